"""cards: PC/SC transport, APDUs (ISO 7816-4, ETSI TS 102 221), the card file system
(TS 31.102 / 31.103 / 51.011), drivers for programmable SIMs, and a software UICC that plugs
into pcscd through vsmartcard-vpcd.

Never imports api/, tools/ or the database parts of simcore.
"""
