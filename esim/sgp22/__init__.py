"""SGP.22 v2.x remote SIM provisioning: the pieces both ends of a profile download share.

One module per concept of GSMA SGP.22 (RSP Technical Specification v2.x):

    schema        the Annex H ASN.1 (RSPDefinitions) compiled with asn1tools, DER
    bsp           §2.6.4–2.6.6 / GPC Amendment F SCP03t: ECKA, the KDF, segment protection
    certificates  §4.5.2 certificate chains CI → EUM → eUICC and CI → DPauth / DPpb
    signatures    §5.6 / §5.7 serverSignature1, euiccSignature1, smdpSignature2, euiccSignature2
    authentication  §3.1.2, §5.6.1–5.6.3, §5.7.5, §5.7.13: mutual authentication and download
                  preparation, the SM-DP+'s checks and the eUICC's answers
    bpp           §2.5.4–2.5.6 / §5.5 building and opening a Bound Profile Package
    notifications §5.6.4 / §5.7.9–5.7.10: ProfileInstallationResult, OtherSignedNotification
    cancel_session  §5.6.5 / §5.7.14: the eUICC's signed cancellation
    es9plus       §5.6 / §6.5 ES9+ on the wire: paths, headers, base64 fields, status codes
    tlv           exact byte slices of received DER (what the signatures cover)

The SM-DP+ (simcore) and the virtual eUICC build on these. This package is pure computation: no
I/O, no database, no HSM — signing takes a callable so private keys can stay in an HSM.
"""
