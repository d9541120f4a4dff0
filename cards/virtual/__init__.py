"""A software UICC: the card file system, PIN/PUK/ADM counters, the personalisation files of
sysmoISIM-SJA2/SJA5 and sysmoUSIM-SJS1, Milenage AUTHENTICATE, and a vpcd client that plugs it
into a real pcscd (vsmartcard-vpcd), so everything above runs exactly as on hardware.
"""
