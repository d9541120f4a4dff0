"""ES10b.LoadBoundProfilePackage on the eUICC, one LPA segment at a time (GSMA SGP.22 v2.x
§5.7.6; segmentation §2.5.5; processing §2.5.6).

The LPA cuts the BoundProfilePackage (BF36) into separate ES10b commands: the BF36 header with
BF23 InitialiseSecureChannel, the A0 header with its '87' ConfigureISDP segment(s), the A1
header, each '88' StoreMetadata segment, the A2 header with its '87' ReplaceSessionKeys, the A3
header, each '86' profile segment. `ProfileLoader.feed` takes one command's data (whole TLVs or
container headers, in order), verifies and decrypts through esim.sgp22.bpp.BppUnwrapper, and
at the end of BF36 checks the UPP (parses as SAIP, ICCID equals StoreMetadata's). Each refusal
is a `LoadError` with the BppCommandId and the SGP.22 ErrorReason the eUICC reports in its
ProfileInstallationResult.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from esim.errors import EsimError
from esim.saip.coding import iccid_from_ef
from esim.saip.package import ProfilePackage
from esim.sgp22 import bsp, schema
from esim.sgp22.bpp import MAX_SEGMENT_LENGTH, BppUnwrapper
from esim.sgp22.errors import Asn1Error, BppError
from esim.sgp22.signatures import PublicKeySource

log = logging.getLogger(__name__)

# Deployed eUICCs accept segments above SGP.22's 1,020 bytes (some SM-DP+s send 1,036); the
# virtual eUICC does too, logging the deviation, up to this bound.
ACCEPTED_SEGMENT_LENGTH = 2048
# Largest BPP this eUICC has room for (installFailedDueToInsufficientMemoryForProfile beyond).
MAX_BPP_LENGTH = 1 << 20

_CONTAINERS = {0xBF36: "boundProfilePackage", 0xA0: "firstSequenceOf87",
               0xA1: "sequenceOf88", 0xA2: "secondSequenceOf87", 0xA3: "sequenceOf86"}
_COMMAND = {"boundProfilePackage": "initialiseSecureChannel",
            "initialiseSecureChannelRequest": "initialiseSecureChannel",
            "firstSequenceOf87": "configureISDP", "sequenceOf88": "storeMetadata",
            "secondSequenceOf87": "replaceSessionKeys", "sequenceOf86": "loadProfileElements"}
# the order of the BPP's parts; A2 is optional
_ORDER = ["boundProfilePackage", "initialiseSecureChannelRequest", "firstSequenceOf87",
          "sequenceOf88", "secondSequenceOf87", "sequenceOf86"]

_PREVIOUS = {"firstSequenceOf87": {"initialiseSecureChannelRequest"},
             "sequenceOf88": {"firstSequenceOf87"}, "secondSequenceOf87": {"sequenceOf88"},
             "sequenceOf86": {"sequenceOf88", "secondSequenceOf87"}}


def _header(data: bytes, offset: int) -> tuple[int | None, int, int]:
    """(tag, value offset, length) of the BER-TLV header at `offset` (X.690 §8.1.2–8.1.3);
    tag None when malformed. Tags of one or two bytes, definite lengths up to 3 bytes."""
    if offset >= len(data):
        return None, 0, 0
    tag = data[offset]
    i = offset + 1
    if tag & 0x1F == 0x1F:
        if i >= len(data) or data[i] & 0x80:
            return None, 0, 0
        tag = tag << 8 | data[i]
        i += 1
    if i >= len(data):
        return None, 0, 0
    first = data[i]
    i += 1
    if first < 0x80:
        return tag, i, first
    n = first & 0x7F
    if n == 0 or n > 3 or i + n > len(data):
        return None, 0, 0
    return tag, i + n, int.from_bytes(data[i:i + n], "big")


class LoadError(EsimError):
    """A BPP refused: `command` (BppCommandId name), `reason` (ErrorReason name), `field`."""

    def __init__(self, command: str, reason: str, field: str, message: str) -> None:
        super().__init__(f"{field}: {reason}: {message}")
        self.command = command
        self.reason = reason
        self.field = field


@dataclass(frozen=True, repr=False)
class LoadedProfile:
    transaction_id: bytes
    store_metadata: dict[str, Any]
    iccid: bytes  # EF.ICCID coding, from StoreMetadata
    upp: bytes  # never logged

    def __repr__(self) -> str:
        return f"LoadedProfile(iccid={self.iccid.hex()})"


class ProfileLoader:
    """The state of one LoadBoundProfilePackage; `feed` returns a LoadedProfile once BF36 is
    complete, None before. Any error ends the load (the eUICC discards the ISD-P)."""

    def __init__(self, *, otsk_euicc: ec.EllipticCurvePrivateKey, eid: bytes,
                 dppb_public_key: PublicKeySource, transaction_id: bytes) -> None:
        self._unwrapper = BppUnwrapper(otsk_euicc=otsk_euicc, eid=eid,
                                       dppb_public_key=dppb_public_key,
                                       transaction_id=transaction_id,
                                       max_segment_length=ACCEPTED_SEGMENT_LENGTH)
        self._part = -1  # index into _ORDER of the part being received
        self._remaining: dict[str, int] = {}  # container -> bytes still expected
        self._counts: dict[str, int] = {}
        self._configure = b""
        self._metadata = b""
        self._upp = bytearray()
        self._oversized = 0
        self._parsed_metadata: Any = None
        self.transaction_id = transaction_id

    @property
    def command(self) -> str:
        """The BppCommandId of the part being processed (for an error result)."""
        return _COMMAND[_ORDER[max(self._part, 0)]]

    def _fail(self, reason: str, field: str, message: str) -> LoadError:
        return LoadError(self.command, reason, field, message)

    def _enter(self, part: str) -> None:
        if _ORDER[max(self._part, 0)] not in _PREVIOUS[part]:
            raise self._fail("scp03tStructureError", part, "out of order")
        # a part ends when the next begins: what it carried must parse
        if part == "sequenceOf88":
            self._decode("ConfigureISDPRequest", self._configure, "firstSequenceOf87")
        if part in ("secondSequenceOf87", "sequenceOf86") and self._parsed_metadata is None:
            self._parsed_metadata = self._decode("StoreMetadataRequest", self._metadata,
                                                 "sequenceOf88")
        self._part = _ORDER.index(part)
        self._counts.setdefault(part, 0)

    def _consume(self, n: int) -> None:
        for name in list(self._remaining):
            self._remaining[name] -= n
            if self._remaining[name] < 0:
                raise self._fail("scp03tStructureError", name, "content beyond its length")

    def feed(self, data: bytes) -> LoadedProfile | None:
        """One ES10b command's data: container headers and whole segments, in BPP order."""
        offset = 0
        while offset < len(data):
            tag, value_start, length = _header(data, offset)
            if tag is None:
                raise self._fail("scp03tStructureError", _ORDER[max(self._part, 0)],
                                 f"malformed TLV header at byte {offset}")
            if tag in _CONTAINERS:
                name = _CONTAINERS[tag]
                if name == "boundProfilePackage":
                    if self._part != -1:
                        raise self._fail("scp03tStructureError", name, "a second BF36")
                    if length > MAX_BPP_LENGTH:
                        raise LoadError("initialiseSecureChannel",
                                        "installFailedDueToInsufficientMemoryForProfile", name,
                                        f"{length} bytes")
                    self._part = 0
                else:
                    for done in [k for k in self._remaining if k != "boundProfilePackage"]:
                        if self._remaining.pop(done):
                            raise self._fail("scp03tStructureError", done,
                                             "ended before its length")
                    self._consume(value_start - offset)
                    self._enter(name)
                self._remaining[name] = length
                offset = value_start
                continue
            end = value_start + length
            if end > len(data):
                raise self._fail("scp03tStructureError", _ORDER[max(self._part, 0)],
                                 "a segment split over two commands")
            self._consume(end - offset)
            self._segment(tag, data[offset:end])
            offset = end
        if self._part >= 0 and self._remaining.get("boundProfilePackage") == 0:
            return self._finish()
        return None

    def _decode(self, type_name: str, value: bytes, where: str) -> Any:
        try:
            return schema.decode(type_name, value)
        except Asn1Error as exc:
            raise LoadError(_COMMAND[where], "incorrectInputValues", where, str(exc)) from None

    def _segment(self, tag: int, segment: bytes) -> None:
        part = _ORDER[self._part] if self._part >= 0 else "none"
        if tag == 0xBF23:
            if part != "boundProfilePackage":
                raise self._fail("scp03tStructureError", "initialiseSecureChannelRequest",
                                 "not first in BF36")
            self._part = 1
            self._guard(lambda: self._unwrapper.initialise_secure_channel(segment))
            return
        expected = {"firstSequenceOf87": 0x87, "sequenceOf88": 0x88,
                    "secondSequenceOf87": 0x87, "sequenceOf86": 0x86}.get(part)
        if tag != expected:
            raise self._fail("scp03tStructureError", part, f"tag {tag:X} not expected here")
        where = f"{part}[{self._counts[part]}]"
        self._counts[part] += 1
        if len(segment) > MAX_SEGMENT_LENGTH:
            self._oversized += 1
            if self._oversized == 1:
                log.warning("BPP segment %s of %d bytes exceeds SGP.22 §2.5.5's %d: accepted "
                            "as deployed eUICCs do", where, len(segment), MAX_SEGMENT_LENGTH)
        if part == "firstSequenceOf87":
            self._configure += self._guard(
                lambda: self._unwrapper.encrypted_segment(segment, where))
        elif part == "sequenceOf88":
            self._metadata += self._guard(lambda: self._unwrapper.mac_only_segment(segment, where))
        elif part == "secondSequenceOf87":
            if self._counts[part] > 1:
                raise self._fail("scp03tStructureError", part, "ReplaceSessionKeys is one segment")
            request = self._guard(lambda: self._unwrapper.encrypted_segment(segment, where))
            self._guard(lambda: self._unwrapper.replace_session_keys(request))
        else:
            self._upp += self._guard(lambda: self._unwrapper.encrypted_segment(
                segment, where, bsp.TAG_PROFILE_86))

    def _guard(self, step: Any) -> Any:
        try:
            return step()
        except BppError as exc:
            raise self._fail(exc.reason, exc.field, str(exc)) from None

    def _finish(self) -> LoadedProfile:
        if _ORDER[self._part] != "sequenceOf86" or not self._counts.get("sequenceOf86"):
            raise self._fail("scp03tStructureError", "boundProfilePackage",
                             "ended before the profile segments")
        if any(v != 0 for v in self._remaining.values()):
            raise self._fail("scp03tStructureError", "boundProfilePackage", "lengths disagree")
        if self._oversized:
            log.warning("BPP accepted with %d segments over %d bytes", self._oversized,
                        MAX_SEGMENT_LENGTH)
        metadata = self._parsed_metadata
        iccid = bytes(metadata["iccid"])
        upp = bytes(self._upp)
        try:
            package = ProfilePackage.from_der(upp)
            upp_iccid = package.iccid
        except (EsimError, ValueError, KeyError) as exc:
            raise LoadError("loadProfileElements", "installFailedDueToPEProcessingError",
                            "sequenceOf86", f"the profile package does not parse as SAIP: "
                            f"{type(exc).__name__}") from None
        if upp_iccid != iccid_from_ef(iccid):
            raise LoadError("loadProfileElements", "installFailedDueToIccidMismatch",
                            "sequenceOf86", "the profile's ICCID is not StoreMetadata's")
        return LoadedProfile(transaction_id=self.transaction_id, store_metadata=metadata,
                             iccid=iccid, upp=upp)
