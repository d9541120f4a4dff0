"""The Bound Profile Package: built by the SM-DP+, opened by the eUICC.

GSMA SGP.22 v2.x §2.5.4 (binding a profile package to one eUICC), §2.5.5 (the BPP and its
segments), §2.5.6 (the eUICC's processing, with the ErrorReason of each refusal) and §5.5 (ES8+):

    BF36 BoundProfilePackage
      BF23 InitialiseSecureChannelRequest: remoteOpId, transactionId, CRT (keyType '88',
           keyLen '10', hostId), otPK.DP.ECKA ('5F49'), smdpSign ('5F37', by SK.DPpb)
      A0   firstSequenceOf87:  ConfigureISDPRequest (BF24), encrypted + MACed
      A1   sequenceOf88:       StoreMetadataRequest (BF25), MACed only
      A2   secondSequenceOf87: ReplaceSessionKeysRequest (BF26), optional: the PPK
      A3   sequenceOf86:       the (protected) profile package in segments

Every segment (tag, length and C-MAC included) is at most 1,020 bytes (§2.5.5): with the
mandatory padding block, that is 1,007 bytes of profile package per '86' segment. The builder
never goes beyond it unless a replay of another implementation asks for it explicitly
(`max_segment_length`), and the opener refuses larger segments by default.

The session keys come from esim.sgp22.bsp; SK.DPpb signs through a `Signer` (an HSM key in
production). The clear profile package is only ever an argument or a return value here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from esim.sgp22 import bsp, schema, signatures
from esim.sgp22.curves import check_curve
from esim.sgp22.errors import (
    Asn1Error,
    BppError,
    KeyAgreementError,
    SegmentError,
    SignatureError,
    UnsupportedCurveError,
)
from esim.sgp22.signatures import PublicKeySource, Signer
from esim.sgp22.tlv import Tlv, children, encode_length, encode_tlv, read_tlv

MAX_SEGMENT_LENGTH = 1020  # SGP.22 §2.5.5, tag, length and MAC included
REMOTE_OP_INSTALL_BPP = 1
DEFAULT_HOST_ID = b"simsmith"
CONFIGURE_ISDP_EMPTY = bytes.fromhex("bf2400")

TAG_BPP = b"\xbf\x36"
TAG_ISC = b"\xbf\x23"
TAG_FIRST_87 = b"\xa0"
TAG_88 = b"\xa1"
TAG_SECOND_87 = b"\xa2"
TAG_86 = b"\xa3"

_UNCOMPRESSED = (serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def _header_length(value_length: int) -> int:
    return 1 + len(encode_length(value_length))


def max_encrypted_payload(max_segment_length: int = MAX_SEGMENT_LENGTH) -> int:
    """The largest payload whose encrypted segment (padding, tag, length, MAC) fits."""
    best = 0
    for payload in range(max_segment_length, 0, -1):
        value = (payload // 16 + 1) * 16 + bsp.MAC_LENGTH
        if _header_length(value) + value <= max_segment_length:
            best = payload
            break
    return best


def max_mac_only_payload(max_segment_length: int = MAX_SEGMENT_LENGTH) -> int:
    """The largest payload whose MAC-only segment fits."""
    for payload in range(max_segment_length, 0, -1):
        value = payload + bsp.MAC_LENGTH
        if _header_length(value) + value <= max_segment_length:
            return payload
    return 0


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)] or [b""]


def _isc_data_objects(transaction_id: bytes, host_id: bytes, otpk_dp: bytes) -> bytes:
    crt = (encode_tlv(b"\x80", bytes([bsp.KEY_TYPE_AES]))
           + encode_tlv(b"\x81", bytes([bsp.KEY_LENGTH])) + encode_tlv(b"\x84", host_id))
    return (encode_tlv(b"\x82", bytes([REMOTE_OP_INSTALL_BPP]))
            + encode_tlv(b"\x80", transaction_id) + encode_tlv(b"\xa6", crt)
            + encode_tlv(signatures.OTPK_TAG, otpk_dp))


def replace_session_keys_request(ppk: bsp.SessionKeys) -> bytes:
    """ReplaceSessionKeysRequest (BF26) carrying the PPK and its initial MCV."""
    return schema.encode("ReplaceSessionKeysRequest", {
        "initialMacChainingValue": ppk.initial_mcv, "ppkEnc": ppk.s_enc,
        "ppkCmac": ppk.s_mac})


@dataclass(frozen=True, repr=False)
class BuiltBpp:
    """A BPP and the one-time public key the SM-DP+ used (otPK.DP.ECKA)."""

    der: bytes
    otpk_dp: bytes

    def __repr__(self) -> str:
        return f"BuiltBpp({len(self.der)} bytes)"


def build_bpp(*, upp: bytes, store_metadata: bytes, transaction_id: bytes, eid: bytes,
              otpk_euicc: bytes, dppb_signer: Signer,
              otsk_dp: ec.EllipticCurvePrivateKey | None = None,
              host_id: bytes = DEFAULT_HOST_ID,
              configure_isdp: bytes = CONFIGURE_ISDP_EMPTY,
              ppk: bsp.SessionKeys | None = None,
              upp_segment_payload: int | None = None,
              max_segment_length: int = MAX_SEGMENT_LENGTH,
              curve: ec.EllipticCurve | None = None) -> BuiltBpp:
    """Bind `upp` (a SAIP profile package, DER) to one eUICC (SGP.22 §2.5.4).

    `otsk_dp` is the session's fresh one-time key (generated here when not given);
    `store_metadata` is the StoreMetadataRequest (BF25) DER; `ppk`, when given, protects the
    profile with Profile Protection Keys announced in ReplaceSessionKeys; `eid` is 16 bytes.
    `curve` is the session's (that of CERT.DPpb: esim.sgp22.curves; default NIST P-256): the
    fresh otSK.DP.ECKA is made on it, and otPK.EUICC.ECKA must be a point on it.
    """
    if not 1 <= len(transaction_id) <= 16:
        raise BppError("transactionId", "incorrectInputValues", "a TransactionID is 1 to 16 bytes")
    if len(eid) != 16:
        raise BppError("eid", "incorrectInputValues", "the EID is 16 bytes")
    encrypted_max = max_encrypted_payload(max_segment_length)
    chunk = upp_segment_payload or min(encrypted_max, max_encrypted_payload())
    if chunk > encrypted_max or chunk < 1:
        raise BppError("sequenceOf86", "incorrectInputValues",
                       f"{chunk}-byte payloads make segments over {max_segment_length} bytes")
    key = otsk_dp or ec.generate_private_key(check_curve(curve or ec.SECP256R1(),
                                                         "otSK.DP.ECKA"))
    if curve is not None and key.curve.name != curve.name:
        raise BppError("otSK.DP.ECKA", "incorrectInputValues",
                       f"the one-time key is on {key.curve.name}, the session on {curve.name}")
    shared = bsp.ecka(key, otpk_euicc, "otPK.EUICC.ECKA")
    keys = bsp.derive_session_keys(shared, host_id, eid)
    otpk_dp = key.public_key().public_bytes(*_UNCOMPRESSED)

    objects = _isc_data_objects(transaction_id, host_id, otpk_dp)
    smdp_sign = signatures.sign(dppb_signer, signatures.isc_signature_input(objects, otpk_euicc),
                                "smdpSign")
    parts = [encode_tlv(TAG_ISC, objects + smdp_sign)]

    protector = bsp.SegmentProtector(keys)
    parts.append(encode_tlv(TAG_FIRST_87, b"".join(
        protector.encrypt_and_mac(bsp.TAG_ENCRYPTED_87, c)
        for c in _chunks(configure_isdp, encrypted_max))))
    parts.append(encode_tlv(TAG_88, b"".join(
        protector.mac_only(bsp.TAG_MAC_ONLY_88, c)
        for c in _chunks(store_metadata, max_mac_only_payload(max_segment_length)))))
    if ppk is not None:
        parts.append(encode_tlv(TAG_SECOND_87, protector.encrypt_and_mac(
            bsp.TAG_ENCRYPTED_87, replace_session_keys_request(ppk))))
        protector.replace_keys(ppk)
    parts.append(encode_tlv(TAG_86, b"".join(
        protector.encrypt_and_mac(bsp.TAG_PROFILE_86, c) for c in _chunks(upp, chunk))))
    return BuiltBpp(encode_tlv(TAG_BPP, b"".join(parts)), otpk_dp)


@dataclass(frozen=True, repr=False)
class OpenedBpp:
    """What an eUICC gets out of a BPP. `upp` is the clear profile package: never logged."""

    transaction_id: bytes
    host_id: bytes
    otpk_dp: bytes
    configure_isdp: bytes
    store_metadata: bytes
    upp: bytes
    replaced_keys: bool = False
    segment_counts: dict[str, int] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"OpenedBpp(transaction_id={self.transaction_id.hex()}, "
                f"upp=<{len(self.upp)} bytes>)")


class BppUnwrapper:
    """The eUICC side (SGP.22 §2.5.6), one step per BPP part so a card can process the
    segments as they arrive (ES8+ via ES10b.LoadBoundProfilePackage); `open_bpp` runs all."""

    def __init__(self, *, otsk_euicc: ec.EllipticCurvePrivateKey, eid: bytes,
                 dppb_public_key: PublicKeySource, transaction_id: bytes | None = None,
                 max_segment_length: int = MAX_SEGMENT_LENGTH) -> None:
        self._key = otsk_euicc
        self._eid = eid
        self._dppb = dppb_public_key
        self._transaction_id = transaction_id
        self._max = max_segment_length
        self._verifier: bsp.SegmentVerifier | None = None
        self.host_id = b""
        self.otpk_dp = b""

    def __repr__(self) -> str:
        return f"BppUnwrapper(transaction_id={(self._transaction_id or b'').hex()})"

    def initialise_secure_channel(self, isc: bytes) -> None:
        """Check BF23 (remote operation, transaction, CRT, smdpSign) and derive the keys."""
        try:
            value = schema.decode("InitialiseSecureChannelRequest", isc)
        except Asn1Error as exc:
            raise BppError("initialiseSecureChannelRequest", "incorrectInputValues",
                           str(exc)) from None
        if value["remoteOpId"] != REMOTE_OP_INSTALL_BPP:
            raise BppError("initialiseSecureChannelRequest.remoteOpId",
                           "unsupportedRemoteOperationType",
                           f"remote operation {value['remoteOpId']} is not "
                           "installBoundProfilePackage(1)")
        tid = bytes(value["transactionId"])
        if self._transaction_id is not None and tid != self._transaction_id:
            raise BppError("initialiseSecureChannelRequest.transactionId", "invalidTransactionId",
                           "not the transaction of this download session")
        crt = value["controlRefTemplate"]
        if crt["keyType"] != bytes([bsp.KEY_TYPE_AES]) or crt["keyLen"] != bytes([bsp.KEY_LENGTH]):
            raise BppError("initialiseSecureChannelRequest.controlRefTemplate",
                           "unsupportedCrtValues", "only AES-128 (keyType '88', keyLen '10')")
        root = read_tlv(isc, where="InitialiseSecureChannelRequest")
        kids = children(isc, root, "InitialiseSecureChannelRequest")
        if kids[-1].tag != signatures.SIGNATURE_TAG:
            raise BppError("initialiseSecureChannelRequest.smdpSign", "invalidSignature",
                           "smdpSign is not the last data object")
        objects = isc[kids[0].start:kids[-1].start]
        otpk_euicc = self._key.public_key().public_bytes(*_UNCOMPRESSED)
        try:
            signatures.verify(self._dppb, signatures.isc_signature_input(objects, otpk_euicc),
                              kids[-1].raw(isc), "smdpSign")
        except SignatureError as exc:
            raise BppError("initialiseSecureChannelRequest.smdpSign", "invalidSignature",
                           str(exc)) from None
        self._transaction_id = tid
        self.host_id = bytes(crt["hostId"])
        self.otpk_dp = bytes(value["smdpOtpk"])
        try:
            shared = bsp.ecka(self._key, self.otpk_dp, "otPK.DP.ECKA")
        except (KeyAgreementError, UnsupportedCurveError) as exc:
            raise BppError("initialiseSecureChannelRequest.smdpOtpk", "incorrectInputValues",
                           str(exc)) from None
        self._verifier = bsp.SegmentVerifier(
            bsp.derive_session_keys(shared, self.host_id, self._eid))

    @property
    def transaction_id(self) -> bytes:
        if self._transaction_id is None:
            raise BppError("initialiseSecureChannelRequest", "incorrectInputValues",
                           "no InitialiseSecureChannel processed yet")
        return self._transaction_id

    def _channel(self, where: str) -> bsp.SegmentVerifier:
        if self._verifier is None:
            raise BppError(where, "scp03tStructureError",
                           "segment before InitialiseSecureChannelRequest")
        return self._verifier

    def _segment(self, tag: int, segment: bytes, where: str, encrypted: bool) -> bytes:
        if len(segment) > self._max:
            raise BppError(where, "scp03tStructureError",
                           f"segment of {len(segment)} bytes, more than {self._max}")
        channel = self._channel(where)
        try:
            if encrypted:
                return channel.decrypt_and_verify(tag, segment, where)
            return channel.verify_mac_only(tag, segment, where)
        except SegmentError as exc:
            reason = "scp03tSecurityError" if exc.reason == "security" else "scp03tStructureError"
            raise BppError(where, reason, str(exc)) from None

    def encrypted_segment(self, segment: bytes, where: str, tag: int = bsp.TAG_ENCRYPTED_87
                          ) -> bytes:
        """A '87' (ConfigureISDP, ReplaceSessionKeys) or '86' (profile) segment's payload."""
        return self._segment(tag, segment, where, encrypted=True)

    def mac_only_segment(self, segment: bytes, where: str) -> bytes:
        """A '88' (StoreMetadata) segment's payload."""
        return self._segment(bsp.TAG_MAC_ONLY_88, segment, where, encrypted=False)

    def replace_session_keys(self, request: bytes) -> None:
        """Apply a ReplaceSessionKeysRequest (BF26): the PPK protects what follows."""
        try:
            value = schema.decode("ReplaceSessionKeysRequest", request)
            ppk = bsp.SessionKeys(s_enc=bytes(value["ppkEnc"]), s_mac=bytes(value["ppkCmac"]),
                                  initial_mcv=bytes(value["initialMacChainingValue"]))
        except (Asn1Error, ValueError):
            raise BppError("secondSequenceOf87", "incorrectInputValues",
                           "not a ReplaceSessionKeysRequest with 16-byte keys") from None
        self._channel("secondSequenceOf87").replace_keys(ppk)


_CONTAINERS = {TAG_FIRST_87: "firstSequenceOf87", TAG_88: "sequenceOf88",
               TAG_SECOND_87: "secondSequenceOf87", TAG_86: "sequenceOf86"}


def _split(bpp: bytes) -> tuple[bytes, dict[str, list[bytes]]]:
    try:
        root = read_tlv(bpp, where="BoundProfilePackage")
        if root.tag != TAG_BPP or root.end != len(bpp):
            raise BppError("boundProfilePackage", "scp03tStructureError",
                           "not one BF36 BoundProfilePackage")
        kids = children(bpp, root, "BoundProfilePackage")
        if not kids or kids[0].tag != TAG_ISC:
            raise BppError("initialiseSecureChannelRequest", "scp03tStructureError",
                           "the BPP does not start with BF23")
        order = [k.tag for k in kids[1:]]
        expected = [TAG_FIRST_87, TAG_88, *([TAG_SECOND_87] if TAG_SECOND_87 in order else []),
                    TAG_86]
        if order != expected:
            raise BppError("boundProfilePackage", "scp03tStructureError",
                           "parts are not A0, A1, [A2,] A3 in order")
        parts: dict[str, list[bytes]] = {}
        for kid in kids[1:]:
            segments: list[Tlv] = children(bpp, kid, _CONTAINERS[kid.tag])
            parts[_CONTAINERS[kid.tag]] = [s.raw(bpp) for s in segments]
    except Asn1Error as exc:
        raise BppError("boundProfilePackage", "scp03tStructureError", str(exc)) from None
    if not parts["firstSequenceOf87"] or not parts["sequenceOf88"] or not parts["sequenceOf86"]:
        raise BppError("boundProfilePackage", "scp03tStructureError", "an empty segment list")
    return kids[0].raw(bpp), parts


def open_bpp(bpp: bytes, *, otsk_euicc: ec.EllipticCurvePrivateKey, eid: bytes,
             dppb_public_key: PublicKeySource, transaction_id: bytes | None = None,
             max_segment_length: int = MAX_SEGMENT_LENGTH) -> OpenedBpp:
    """Verify and unwrap a whole BPP (eUICC side); raises BppError with the SGP.22 reason."""
    isc, parts = _split(bpp)
    unwrapper = BppUnwrapper(otsk_euicc=otsk_euicc, eid=eid, dppb_public_key=dppb_public_key,
                             transaction_id=transaction_id,
                             max_segment_length=max_segment_length)
    unwrapper.initialise_secure_channel(isc)
    configure = b"".join(unwrapper.encrypted_segment(s, f"firstSequenceOf87[{i}]")
                         for i, s in enumerate(parts["firstSequenceOf87"]))
    metadata = b"".join(unwrapper.mac_only_segment(s, f"sequenceOf88[{i}]")
                        for i, s in enumerate(parts["sequenceOf88"]))
    for type_name, value, where in (("ConfigureISDPRequest", configure, "firstSequenceOf87"),
                                    ("StoreMetadataRequest", metadata, "sequenceOf88")):
        try:
            schema.decode(type_name, value)
        except Asn1Error as exc:
            raise BppError(where, "incorrectInputValues", str(exc)) from None
    second = parts.get("secondSequenceOf87")
    if second is not None:
        if len(second) != 1:
            raise BppError("secondSequenceOf87", "scp03tStructureError",
                           "ReplaceSessionKeys is one segment")
        unwrapper.replace_session_keys(unwrapper.encrypted_segment(second[0],
                                                                   "secondSequenceOf87[0]"))
    upp = b"".join(unwrapper.encrypted_segment(s, f"sequenceOf86[{i}]", bsp.TAG_PROFILE_86)
                   for i, s in enumerate(parts["sequenceOf86"]))
    return OpenedBpp(transaction_id=unwrapper.transaction_id, host_id=unwrapper.host_id,
                     otpk_dp=unwrapper.otpk_dp, configure_isdp=configure,
                     store_metadata=metadata, upp=upp, replaced_keys=second is not None,
                     segment_counts={k: len(v) for k, v in parts.items()})
