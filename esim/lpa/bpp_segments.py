"""Segmenting a Bound Profile Package for ES10b.LoadBoundProfilePackage (GSMA SGP.22 v2.x
§2.5.5 "Segmentation of the Bound Profile Package", LPAd side).

The LPAd sends, each as its own ES10b command (itself chained over STORE DATA blocks):
the BF36 tag and length with the whole BF23 InitialiseSecureChannelRequest; the A0 tag and
length with its '87' segment(s); the A1 tag and length alone; each '88'; the A2 tag and length
with its '87' (only when present); the A3 tag and length alone; each '86'.
"""

from __future__ import annotations

from esim.sgp22.errors import BppError
from esim.sgp22.tlv import Tlv, children, read_tlv


def _header(data: bytes, tlv: Tlv) -> bytes:
    return data[tlv.start:tlv.value_start]


def segment_bpp(bpp: bytes) -> list[bytes]:
    """The ES10b.LoadBoundProfilePackage commands' data for one BPP, in order."""
    root = read_tlv(bpp, where="BoundProfilePackage")
    if root.tag != b"\xbf\x36" or root.end != len(bpp):
        raise BppError("boundProfilePackage", "scp03tStructureError",
                       "not one BF36 BoundProfilePackage")
    kids = children(bpp, root, "BoundProfilePackage")
    if not kids or kids[0].tag != b"\xbf\x23":
        raise BppError("initialiseSecureChannelRequest", "scp03tStructureError",
                       "the BPP does not start with BF23")
    out = [_header(bpp, root) + kids[0].raw(bpp)]
    for kid in kids[1:]:
        segments = children(bpp, kid, "BoundProfilePackage")
        if kid.tag in (b"\xa0", b"\xa2"):
            out.append(_header(bpp, kid) + b"".join(s.raw(bpp) for s in segments))
        elif kid.tag in (b"\xa1", b"\xa3"):
            out.append(_header(bpp, kid))
            out.extend(s.raw(bpp) for s in segments)
        else:
            raise BppError("boundProfilePackage", "scp03tStructureError",
                           f"unexpected part {kid.tag.hex().upper()}")
    return out
