"""QR codes and links (SGP.22 §4.1.2), decoded with real decoders: zbarimg (Debian zbar-tools) on
the PNG and SVG, zxing-cpp's reader on the module matrix."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st

from esim.activation_code import ActivationCode
from esim.errors import ActivationCodeError
from esim.qr import (
    ios_install_link,
    lpa_uri,
    png_data_uri,
    qr_matrix,
    qr_png,
    qr_svg,
    svg_data_uri,
)

CODES = [
    ActivationCode("rsp.example.com", "K7Q2M-ABCDE-FGHJK-MNPQR-STVWX"),
    ActivationCode("SMDP.GSMA.COM", "04386-AGYFT-A74Y8-3F815", "1.3.6.1.4.1.31746", True),
    ActivationCode("smdp.example.com", "A", confirmation_code_required=True),
]

needs_zbar = pytest.mark.skipif(shutil.which("zbarimg") is None,
                                reason="zbarimg missing: run scripts/install-system-deps.sh")


def _zbar(path: Path) -> str:
    out = subprocess.run(["zbarimg", "-q", "--raw", str(path)], capture_output=True, check=True,
                         timeout=30)
    return out.stdout.decode().rstrip("\n")


@needs_zbar
@pytest.mark.parametrize("ac", CODES, ids=str)
def test_png_decodes_to_lpa_uri(ac: ActivationCode, tmp_path: Path) -> None:
    path = tmp_path / "code.png"
    path.write_bytes(qr_png(ac))
    assert _zbar(path) == "LPA:" + ac.to_string()


@needs_zbar
@pytest.mark.skipif(shutil.which("rsvg-convert") is None, reason="rsvg-convert (librsvg2-bin)")
@pytest.mark.parametrize("ac", CODES, ids=str)
def test_svg_renders_and_decodes(ac: ActivationCode, tmp_path: Path) -> None:
    svg = tmp_path / "code.svg"
    svg.write_text(qr_svg(ac))
    png = tmp_path / "code.png"
    subprocess.run(["rsvg-convert", "-o", str(png), str(svg)], check=True, timeout=30)
    assert _zbar(png) == ac.to_uri()


def test_quiet_zone_and_structure() -> None:
    ac = CODES[0]
    m = qr_matrix(ac)
    n = len(m)
    assert (n - 8 - 17) % 4 == 0  # 21 + 4(v-1) modules plus two quiet zones of 4
    for i in range(4):
        assert not any(m[i]) and not any(m[n - 1 - i])
        assert not any(row[i] for row in m) and not any(row[n - 1 - i] for row in m)
    svg = qr_svg(ac)
    assert svg.startswith("<svg ") and f'viewBox="0 0 {n} {n}"' in svg
    png = qr_png(ac, module_px=3)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert int.from_bytes(png[16:20], "big") == n * 3


def test_links() -> None:
    ac = CODES[1]
    link = ios_install_link(ac)
    prefix = "https://esimsetup.apple.com/esim_qrcode_provisioning?carddata="
    assert link.startswith(prefix)
    assert "$" not in link and ":" not in link[len(prefix):]
    assert unquote(link[len(prefix):]) == ac.to_uri()
    assert lpa_uri(ac) == "LPA:1$SMDP.GSMA.COM$04386-AGYFT-A74Y8-3F815$1.3.6.1.4.1.31746$1"
    assert lpa_uri(ac.to_uri()) == ac.to_uri()
    assert base64.b64decode(png_data_uri(ac).split(",", 1)[1]) == qr_png(ac)
    assert base64.b64decode(svg_data_uri(ac).split(",", 1)[1]).decode() == qr_svg(ac)


def test_strings_are_validated() -> None:
    with pytest.raises(ActivationCodeError):
        qr_png("1$SMDP.GSMA.COM$ABC")  # no LPA: prefix
    with pytest.raises(ActivationCodeError):
        ios_install_link("LPA:1$SMDP.GSMA.COM$abc")


def _decode(matrix: list[list[bool]], scale: int = 3) -> zxingcpp.Barcode:
    """Read a module matrix back with zxing-cpp's reader (the encoder is zint's: another code
    base), one 8-bit pixel per module scaled up."""
    width = len(matrix) * scale
    pixels = b"".join(bytes(0 if dark else 255 for dark in row for _ in range(scale)) * scale
                      for row in matrix)
    return zxingcpp.read_barcode(zxingcpp.ImageView(pixels, width, width,
                                                    zxingcpp.ImageFormat.Lum))


_FQDN = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z]{2,6}){1,3}", fullmatch=True)
_MATCHING_ID = st.from_regex(r"[0-9A-Z-]{1,64}", fullmatch=True)


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(_FQDN, _MATCHING_ID, st.booleans())
def test_symbol_round_trips(fqdn: str, matching_id: str, cc: bool) -> None:
    """Any activation code: the symbol reads back as the LPA: URI, at level M, without an ECI
    (symbology identifier ]Q1: byte data as is, what phone scanners expect)."""
    ac = ActivationCode(fqdn, matching_id, confirmation_code_required=cc)
    found = _decode(qr_matrix(ac))
    assert found.valid
    assert found.text == ac.to_uri()
    assert found.ec_level == "M"
    assert found.symbology_identifier == "]Q1"


def test_long_code_uses_a_large_version() -> None:
    """Versions 7+ carry version information blocks; a long code still reads back."""
    ac = ActivationCode("a" * 60 + ".example.com", "Z" * 200)
    m = qr_matrix(ac)
    assert (len(m) - 8 - 17) // 4 + 1 >= 7
    assert _decode(m).text == ac.to_uri()
