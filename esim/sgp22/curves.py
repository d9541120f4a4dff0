"""The elliptic curves of an SGP.22 download, and which one a session uses.

GSMA SGP.22 v2.x §2.6.7 (and §4.5.2.0): every signature (ECDSA with SHA-256) and every key
agreement (ECKA-DH, §2.6.4) is on NIST P-256 (secp256r1, OID 1.2.840.10045.3.1.7, FIPS 186-4)
or brainpoolP256r1 (OID 1.3.36.3.3.2.8.1.1.7, RFC 5639); the eUICC supports both, an RSP
server one or both. The curve is named in each certificate's SubjectPublicKeyInfo
(id-ecPublicKey with namedCurve parameters, RFC 5480 §2.1.1), and all certificates of one chain
point to the same curve (§4.5.2.0).

Which curve a download uses — the rule simsmith applies, from those sections and §3.1.2 /
§5.6.1 / §5.7.5:

1. The SM-DP+ chooses the CI of the session, euiccCiPKIdToBeUsed, from the eUICC's
   euiccCiPKIdListForVerification (EUICCInfo1): the first key identifier, in the eUICC's order,
   of a CI for which it holds CERT.DPauth / CERT.DPpb and which is also in the eUICC's
   euiccCiPKIdListForSigning (the eUICC answers with the CERT.EUICC of that CI's chain).
2. The session's curve is that CI's curve: CERT.DPauth, CERT.DPpb, CERT.EUM and CERT.EUICC are
   on it (one chain, one curve).
3. The eUICC makes otSK.EUICC.ECKA on the curve of CERT.DPpb (§5.7.5 PrepareDownload); the
   SM-DP+ makes otSK.DP.ECKA on the same curve and refuses an otPK.EUICC.ECKA that is not a
   point on it (§5.6.3, §2.6.4 — ECKA between points of two curves is undefined).

Any other curve is refused with `UnsupportedCurveError` (field and OID named): a certificate
key on P-384, say, or a one-time key of the wrong curve.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec

from esim.sgp22.errors import UnsupportedCurveError

__all__ = [
    "BRAINPOOL_P256R1",
    "CURVES",
    "NIST_P256",
    "check_curve",
    "curve_by_name",
    "curve_of",
    "curve_oid",
]

NIST_P256 = "secp256r1"
BRAINPOOL_P256R1 = "brainpoolP256r1"
# cryptography's curve name -> (curve class, OID): the two of SGP.22 §2.6.7
CURVES: dict[str, tuple[type[ec.EllipticCurve], str]] = {
    NIST_P256: (ec.SECP256R1, ec.EllipticCurveOID.SECP256R1.dotted_string),
    BRAINPOOL_P256R1: (ec.BrainpoolP256R1, ec.EllipticCurveOID.BRAINPOOLP256R1.dotted_string),
}


def curve_oid(curve: ec.EllipticCurve) -> str:
    """The namedCurve OID of a curve cryptography knows (its name when it has none)."""
    for name in dir(ec.EllipticCurveOID):
        oid = getattr(ec.EllipticCurveOID, name)
        if name.startswith("_") or not hasattr(oid, "dotted_string"):
            continue
        try:
            if ec.get_curve_for_oid(oid).name == curve.name:
                return str(oid.dotted_string)
        except LookupError:
            continue
    return curve.name


def curve_by_name(name: str, field: str = "curve") -> ec.EllipticCurve:
    """secp256r1 / brainpoolP256r1 (case-insensitive; also P-256 / prime256v1, or an OID)."""
    wanted = name.strip().lower()
    aliases = {"p-256": NIST_P256, "p256": NIST_P256, "prime256v1": NIST_P256,
               "nist-p256": NIST_P256}
    wanted = aliases.get(wanted, wanted)
    for known, (cls, oid) in CURVES.items():
        if wanted in (known.lower(), oid):
            return cls()
    raise UnsupportedCurveError(field, name)


def check_curve(curve: ec.EllipticCurve, field: str) -> ec.EllipticCurve:
    """`curve` itself when SGP.22 allows it; UnsupportedCurveError(field, its OID) else."""
    if curve.name not in CURVES:
        raise UnsupportedCurveError(field, curve_oid(curve))
    return curve


def curve_of(key: object, field: str) -> ec.EllipticCurve:
    """The SGP.22 curve of an EC key (public or private) or of a certificate's key."""
    from cryptography import x509

    if isinstance(key, x509.Certificate):
        key = key.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        raise UnsupportedCurveError(field, f"not an EC key ({type(key).__name__})")
    return check_curve(key.curve, field)
