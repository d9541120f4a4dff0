"""QR symbols for activation codes: segments, error correction and module placement come from the
`qrcode` library; the data-mask choice (ISO/IEC 18004:2015 §7.8.2-7.8.3) is made here, by the
same four penalty rules, several times faster than `qrcode`'s module-by-module evaluation.

How: the symbol is written once as text, its rows then its columns, one character per module
('1' dark, '0' light, '2' ends a row or column). That text as a big-endian integer can be masked
with three integer operations per candidate mask (the mask's modules hold 0x01 in their byte), and
read back as text for the run and finder-pattern rules, which `re` and `str.count` then scan in C.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import qrcode
from qrcode import util

_RUNS = re.compile(r"0{5,}|1{5,}")
_FINDER_LIKE = ("10111010000", "00001011101")


@dataclass(frozen=True)
class _Layout:
    n: int
    length: int  # bytes of the text: rows, then columns, each followed by '2'
    flips: tuple[int, ...]  # per mask: modules that differ from mask 0 (data modules only)
    keep: int  # everything but the format information modules
    infos: tuple[int, ...]  # per mask: the format information modules that are dark
    block_bits: int  # 0x01 at every module (r, c) of the rows part with r, c < n - 1


def _place(n: int, cells: list[list[bool]], value: int = 1) -> int:
    """Bytes with `value` at every marked module, in both the row and the column part."""
    out = bytearray(2 * n * (n + 1))
    columns = n * (n + 1)
    for r in range(n):
        for c in range(n):
            if cells[r][c]:
                out[r * (n + 1) + c] = value
                out[columns + c * (n + 1) + r] = value
    return int.from_bytes(out, "big")


@functools.cache
def _layout(version: int, error_correction: int) -> _Layout:
    qr = qrcode.QRCode(version=version, error_correction=error_correction)
    n = qr.modules_count = version * 4 + 17
    qr.modules = [[None] * n for _ in range(n)]
    for row, col in ((0, 0), (n - 7, 0), (0, n - 7)):
        qr.setup_position_probe_pattern(row, col)
    qr.setup_position_adjust_pattern()
    qr.setup_timing_pattern()
    if version >= 7:
        qr.setup_type_number(False)
    fixed = [[c is not None for c in row] for row in qr.modules]
    qr.setup_type_info(False, 0)
    info = [[qr.modules[r][c] is not None and not fixed[r][c] for c in range(n)]
            for r in range(n)]
    data = [[qr.modules[r][c] is None for c in range(n)] for r in range(n)]
    mask0 = util.mask_func(0)
    flips, infos = [], []
    for mask in range(8):
        fn = util.mask_func(mask)
        flips.append(_place(n, [[data[r][c] and fn(r, c) != mask0(r, c) for c in range(n)]
                                for r in range(n)]))
        qr.modules = [[False] * n for _ in range(n)]
        qr.setup_type_info(False, mask)
        infos.append(_place(n, qr.modules))
    length = 2 * n * (n + 1)
    everything = (1 << (8 * length)) - 1
    keep = everything ^ _place(n, info)  # clears bit 0 of the format information bytes
    blocks = [[r < n - 1 and c < n - 1 for c in range(n)] for r in range(n)]
    block_bits = _place(n, blocks) >> (8 * n * (n + 1))  # the rows part only
    return _Layout(n, length, tuple(flips), keep, tuple(infos), block_bits)


def _penalty(text: str, masked: int, layout: _Layout) -> int:
    """ISO/IEC 18004:2015 §7.8.3.1: N1 runs, N2 blocks, N3 finder-like, N4 dark proportion."""
    n = layout.n
    runs = _RUNS.findall(text)
    score = sum(map(len, runs)) - 2 * len(runs)  # 3 + (length - 5) for each run
    score += 40 * (text.count(_FINDER_LIKE[0]) + text.count(_FINDER_LIKE[1]))
    rows = masked >> (8 * n * (n + 1))
    right, down = rows >> 8, rows >> (8 * (n + 1))
    diagonal = down >> 8
    same = ~(rows ^ right) & ~(rows ^ down) & ~(rows ^ diagonal) & layout.block_bits
    score += 3 * same.bit_count()
    dark = text.count("1", 0, n * (n + 1))
    return score + 10 * (abs(dark * 100 // (n * n) - 50) // 5)


def mask_candidates(text: str, error_correction: int) -> list[tuple[int, list[str]]]:
    """(penalty, rows) of the symbol under each of the eight masks, in mask order."""
    return [(score, _split(candidate, n)) for score, candidate, n in
            _evaluate(text, error_correction)]


def symbol_rows(text: str, error_correction: int) -> list[str]:
    """The QR symbol of `text` (no quiet zone) as rows of '0' (light) and '1' (dark), under the
    mask of lowest penalty (the first such mask on a tie)."""
    best = min(_evaluate(text, error_correction), key=lambda item: item[0])
    return _split(best[1], best[2])


def _split(candidate: str, n: int) -> list[str]:
    return [candidate[r * (n + 1):r * (n + 1) + n] for r in range(n)]


def _evaluate(text: str, error_correction: int) -> list[tuple[int, str, int]]:
    qr = qrcode.QRCode(error_correction=error_correction, border=0, mask_pattern=0)
    qr.add_data(text)
    qr.make(fit=True)
    layout = _layout(qr.version, error_correction)
    n = layout.n
    rows = ["".join(["1" if m else "0" for m in row]) for row in qr.modules]
    columns = ["".join(col) for col in zip(*rows, strict=True)]
    base = int.from_bytes(("2".join(rows) + "2" + "2".join(columns) + "2").encode(), "big")
    out = []
    for mask in range(8):
        masked = ((base ^ layout.flips[mask]) & layout.keep) | layout.infos[mask]
        candidate = masked.to_bytes(layout.length, "big").decode("ascii")
        out.append((_penalty(candidate, masked, layout), candidate, n))
    return out
