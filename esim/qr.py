"""QR codes and install links for activation codes, GSMA SGP.22 §4.1.2 (ISO/IEC 18004 QR codes).

The QR code carries the activation code with its 'LPA:' prefix. Error correction level M (15 %)
keeps the symbol small while surviving print and screen glare; the quiet zone is the 4 modules
ISO/IEC 18004 requires. The symbol (segments, Reed-Solomon blocks, module placement, the mask of
lowest penalty) comes from zxing-cpp's encoder (zint, in C): about 0.05 ms a code, where the
pure-Python `qrcode` library took over 1 ms — a QR code is in every eSIM order's answer. PNG and
SVG are drawn from the module matrix here, without Typer or rich.
"""

from __future__ import annotations

import base64
import io
import re
import zlib
from urllib.parse import quote

import zxingcpp

from esim.activation_code import ActivationCode

QUIET_ZONE = 4
_DARK = re.compile("1+")
ERROR_CORRECTION = "M"
# zxing-cpp's module image: 0 = dark, 255 = light.
_MODULES = bytes.maketrans(b"\x00\xff", b"10")
IOS_PROVISIONING_URL = "https://esimsetup.apple.com/esim_qrcode_provisioning?carddata="


def _text(code: ActivationCode | str) -> str:
    if isinstance(code, ActivationCode):
        return code.to_uri()
    return ActivationCode.from_uri(code).to_uri()  # validates an 'LPA:1$…' string


def _rows(code: ActivationCode | str) -> list[str]:
    """Rows of '0'/'1' modules, quiet zone included."""
    rows = symbol_rows(_text(code))
    pad = "0" * QUIET_ZONE
    blank = "0" * (len(rows) + 2 * QUIET_ZONE)
    return [blank] * QUIET_ZONE + [pad + r + pad for r in rows] + [blank] * QUIET_ZONE


def symbol_rows(text: str) -> list[str]:
    """The QR symbol of `text` (no quiet zone) as rows of '0' (light) and '1' (dark)."""
    symbol = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode,
                                     ec_level=ERROR_CORRECTION)
    if symbol.ec_level != ERROR_CORRECTION:  # unknown options are ignored, not refused
        raise RuntimeError(f"QR encoder made level {symbol.ec_level}, not {ERROR_CORRECTION}")
    image = memoryview(symbol.to_image(scale=1, add_quiet_zones=False))  # type: ignore[arg-type]
    n = image.shape[1] if image.shape else 0
    flat = image.tobytes().translate(_MODULES).decode("ascii")
    return [flat[i:i + n] for i in range(0, len(flat), n)]


def qr_matrix(code: ActivationCode | str) -> list[list[bool]]:
    """The QR symbol's modules (True = dark), quiet zone included."""
    return [[m == "1" for m in row] for row in _rows(code)]


def qr_png(code: ActivationCode | str, module_px: int = 8) -> bytes:
    """A black-on-white PNG of the QR code, `module_px` pixels per module."""
    return _png_1bit(_rows(code), module_px)


def qr_svg(code: ActivationCode | str, module_px: int = 8) -> str:
    """An SVG of the QR code: one path of dark modules on a white background."""
    rows = _rows(code)
    n = len(rows)
    runs = [f"M{m.start()} {y}h{len(m.group())}v1h-{len(m.group())}z"
            for y, row in enumerate(rows) for m in _DARK.finditer(row)]
    size = n * module_px
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{size}" height="{size}" '
        f'viewBox="0 0 {n} {n}" shape-rendering="crispEdges">'
        f'<rect width="{n}" height="{n}" fill="#fff"/>'
        f'<path fill="#000" d="{"".join(runs)}"/></svg>\n'
    )


def lpa_uri(code: ActivationCode | str) -> str:
    """The 'LPA:1$…' URI."""
    return _text(code)


def ios_install_link(code: ActivationCode | str) -> str:
    """Apple's universal link that opens eSIM installation with the activation code on iOS."""
    return IOS_PROVISIONING_URL + quote(_text(code), safe="")


def png_data_uri(code: ActivationCode | str, module_px: int = 8) -> str:
    """The PNG as a data: URI, for embedding in HTML or JSON."""
    return "data:image/png;base64," + base64.b64encode(qr_png(code, module_px)).decode("ascii")


def svg_data_uri(code: ActivationCode | str) -> str:
    """The SVG as a data: URI."""
    return "data:image/svg+xml;base64," + base64.b64encode(qr_svg(code).encode()).decode("ascii")


def _png_1bit(rows: list[str], scale: int) -> bytes:
    """Write a 1-bit greyscale PNG directly (PNG spec, ISO/IEC 15948): fast and dependency-free."""
    n = len(rows)
    width = n * scale
    table = str.maketrans({"1": "0" * scale, "0": "1" * scale})  # dark modules are black (0)
    pad = "0" * (-width % 8)
    raw = io.BytesIO()
    for row in rows:
        bits = row.translate(table) + pad
        line = b"\x00" + int(bits, 2).to_bytes(len(bits) // 8, "big")
        raw.write(line * scale)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") * 2 + bytes([1, 0, 0, 0, 0])  # depth 1, greyscale
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(raw.getvalue(), 6)) + chunk(b"IEND", b""))
