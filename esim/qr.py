"""QR codes and install links for activation codes, GSMA SGP.22 §4.1.2 (ISO/IEC 18004 QR codes).

The QR code carries the activation code with its 'LPA:' prefix. Error correction level M (15 %)
keeps the symbol small while surviving print and screen glare; the quiet zone is the 4 modules
ISO/IEC 18004 requires. PNG and SVG are drawn from the module matrix here, without Typer or rich.
"""

from __future__ import annotations

import base64
import io
import zlib
from urllib.parse import quote

import qrcode
from qrcode.constants import ERROR_CORRECT_M

from esim.activation_code import ActivationCode

QUIET_ZONE = 4
IOS_PROVISIONING_URL = "https://esimsetup.apple.com/esim_qrcode_provisioning?carddata="


def _text(code: ActivationCode | str) -> str:
    if isinstance(code, ActivationCode):
        return code.to_uri()
    return ActivationCode.from_uri(code).to_uri()  # validates an 'LPA:1$…' string


def qr_matrix(code: ActivationCode | str) -> list[list[bool]]:
    """The QR symbol's modules (True = dark), quiet zone included."""
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=QUIET_ZONE)
    qr.add_data(_text(code))
    qr.make(fit=True)
    return qr.get_matrix()


def qr_png(code: ActivationCode | str, module_px: int = 8) -> bytes:
    """A black-on-white PNG of the QR code, `module_px` pixels per module."""
    matrix = qr_matrix(code)
    return _png_1bit(matrix, module_px)


def qr_svg(code: ActivationCode | str, module_px: int = 8) -> str:
    """An SVG of the QR code: one path of dark modules on a white background."""
    matrix = qr_matrix(code)
    n = len(matrix)
    runs = []
    for y, row in enumerate(matrix):
        x = 0
        while x < n:
            if row[x]:
                start = x
                while x < n and row[x]:
                    x += 1
                runs.append(f"M{start} {y}h{x - start}v1h-{x - start}z")
            else:
                x += 1
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


def _png_1bit(matrix: list[list[bool]], scale: int) -> bytes:
    """Write a 1-bit greyscale PNG directly (PNG spec, ISO/IEC 15948): fast and dependency-free."""
    n = len(matrix)
    width = n * scale
    raw = io.BytesIO()
    for row in matrix:
        bits = "".join(("0" if dark else "1") * scale for dark in row)
        bits += "0" * (-len(bits) % 8)
        line = b"\x00" + int(bits, 2).to_bytes(len(bits) // 8, "big")
        raw.write(line * scale)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") * 2 + bytes([1, 0, 0, 0, 0])  # depth 1, greyscale
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(raw.getvalue(), 6)) + chunk(b"IEND", b""))
