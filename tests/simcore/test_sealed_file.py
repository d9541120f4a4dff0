"""simcore.sealed_file: AES-256-GCM in STREAM chunks. The clear bytes come back exactly, line by
line as the parser reads them; a flipped byte, a dropped, swapped or repeated chunk, a cut at or
inside a chunk, bytes appended, a changed header or another key each fail with SealedFileError
naming the owner and the byte offset — before any clear byte of that chunk is handed out."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from simcore import sealed_file
from simcore.sealed_file import (
    MAGIC,
    TAG,
    SealedFileError,
    SealedReader,
    SealedSource,
    SealedWriter,
    clear_size,
)

KEY = bytes(range(32))
C = 64  # a small chunk: many chunks from small files


def _seal(path: Path, data: bytes, key: bytes = KEY, chunk: int = C,
          writes: int = 7) -> SealedWriter:
    with SealedWriter(path, key, {"kind": "test", "id": 1}, chunk=chunk) as w:
        for i in range(0, len(data), writes):
            w.write(data[i:i + writes])
    return w


def _read(path: Path, key: bytes = KEY) -> bytes:
    with SealedReader(path, key, "test file 1") as r:
        return r.read()


def _body_start(path: Path) -> int:
    raw = path.read_bytes()
    return len(MAGIC) + 4 + int.from_bytes(raw[8:12], "big")


# The GCM specification's test case 16 (McGrew & Viega; NIST SP 800-38D's examples): AES-256,
# 96-bit IV, additional data — the primitive every chunk is sealed with.
K16 = bytes.fromhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
P16 = bytes.fromhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
                    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39")
A16 = bytes.fromhex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
IV16 = bytes.fromhex("cafebabefacedbaddecaf888")
CT16 = bytes.fromhex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
                     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
                     "76fc6ece0f4e1768cddf8853bb2d551b")


def test_gcm_test_case_16() -> None:
    assert AESGCM(K16).encrypt(IV16, P16, A16) == CT16


def test_nonce_is_prefix_index_and_final_flag() -> None:
    p = bytes.fromhex("01020304050607")
    assert sealed_file.nonce(p, 0, False).hex() == "01020304050607" "00000000" "00"
    assert sealed_file.nonce(p, 258, True).hex() == "01020304050607" "00000102" "01"


def test_chunks_as_specified(tmp_path: Path) -> None:
    """The layout, opened by hand with AES-GCM: chunk i under prefix ‖ i ‖ final, the header as
    additional data; full chunks, then one shorter final chunk."""
    data = bytes(range(256)) * 2  # 512 bytes = 8 full chunks of 64: then an empty final one
    p = tmp_path / "f.sealed"
    w = _seal(p, data)
    raw = p.read_bytes()
    start = _body_start(p)
    header = raw[12:start]
    assert header == w.header
    prefix = bytes.fromhex(__import__("json").loads(header)["prefix"])
    body, out, i = raw[start:], b"", 0
    while body:
        piece, body = body[:C + TAG], body[C + TAG:]
        out += AESGCM(KEY).decrypt(sealed_file.nonce(prefix, i, not body), piece, header)
        i += 1
    assert out == data and i == 9 and len(raw) - start == 8 * (C + TAG) + TAG


@pytest.mark.parametrize("n", [0, 1, C - 1, C, C + 1, 3 * C, 3 * C + 5])
def test_round_trip_and_size(tmp_path: Path, n: int) -> None:
    data = os.urandom(n)
    p = tmp_path / "f.sealed"
    w = _seal(p, data)
    assert w.size == n and _read(p) == data
    assert clear_size(p.stat().st_size, _body_start(p), C) == n
    assert oct(p.stat().st_mode & 0o777) == "0o600"


def test_lines_read_through_a_buffered_reader_are_the_clear_lines(tmp_path: Path) -> None:
    text = b"".join(b"line %d " % i + b"x" * (i % 150) + b"\r\n" for i in range(300)) + b"end"
    p = tmp_path / "f.sealed"
    _seal(p, text, chunk=sealed_file.CHUNK)
    src = SealedSource(tmp_path / "B1.out", p, KEY, "upload of import job 3")
    assert src.size() == len(text)
    clear = io.BytesIO(text)
    with src.open() as f:
        lines = [f.readline(100) for _ in range(600)]
    assert lines == [clear.readline(100) for _ in range(600)] and b"".join(lines) == text
    assert KEY.hex() not in repr(src) and repr(KEY) not in repr(src)


def test_nothing_in_clear_on_disk(tmp_path: Path) -> None:
    secret = b"PUK1 52719384 KI 000102030405060708090A0B0C0D0E0F\n" * 50
    p = tmp_path / "f.sealed"
    _seal(p, secret)
    raw = p.read_bytes()
    assert b"52719384" not in raw and b"000102030405060708090A0B0C0D0E0F" not in raw


def _damaged(tmp_path: Path, change: object) -> tuple[Path, int]:
    data = bytes(range(200)) * 2  # 400 bytes: 6 full chunks and a final one of 16
    p = tmp_path / "f.sealed"
    p.unlink(missing_ok=True)
    _seal(p, data)
    start = _body_start(p)
    raw = bytearray(p.read_bytes())
    p.write_bytes(bytes(change(raw, start)))  # type: ignore[operator]
    return p, start


def _fails_at(p: Path, offset: int, words: str) -> None:
    got = bytearray()
    with pytest.raises(SealedFileError) as e, SealedReader(p, KEY, "upload of import job 9") as r:
        while chunk := r.read(10):
            got += chunk
    assert e.value.offset == offset and e.value.what == "upload of import job 9"
    assert words in str(e.value) and f"byte offset {offset}" in str(e.value)
    assert str(e.value).startswith("upload of import job 9:")
    assert len(got) <= max(0, offset - _body_start(p)) // (C + TAG) * C  # no clear byte after


def test_a_flipped_byte(tmp_path: Path) -> None:
    def flip(raw: bytearray, start: int) -> bytearray:
        raw[start + 2 * (C + TAG) + 5] ^= 1
        return raw

    p, start = _damaged(tmp_path, flip)
    _fails_at(p, start + 2 * (C + TAG), "altered")


def test_chunks_swapped_dropped_or_repeated(tmp_path: Path) -> None:
    n = C + TAG

    def swap(raw: bytearray, s: int) -> bytes:
        return bytes(raw[:s + n] + raw[s + 2 * n:s + 3 * n] + raw[s + n:s + 2 * n]
                     + raw[s + 3 * n:])

    p, start = _damaged(tmp_path, swap)
    _fails_at(p, start + n, "chunk 1")

    def drop(raw: bytearray, s: int) -> bytes:
        return bytes(raw[:s + n] + raw[s + 2 * n:])

    p, start = _damaged(tmp_path, drop)
    _fails_at(p, start + n, "chunk 1")

    def repeat(raw: bytearray, s: int) -> bytes:
        return bytes(raw[:s + 2 * n] + raw[s + n:])

    p, start = _damaged(tmp_path, repeat)
    _fails_at(p, start + 2 * n, "chunk 2")


def test_truncated_at_a_chunk_boundary_or_inside_one(tmp_path: Path) -> None:
    n = C + TAG
    p, start = _damaged(tmp_path, lambda raw, s: raw[:s + 3 * n])
    _fails_at(p, start + 3 * n, "truncated")
    p, start = _damaged(tmp_path, lambda raw, s: raw[:s + 3 * n + 40])
    _fails_at(p, start + 3 * n, "chunk 3")
    p, start = _damaged(tmp_path, lambda raw, s: raw[:s + 3 * n + 5])  # shorter than a tag
    _fails_at(p, start + 3 * n, "truncated inside a chunk")
    p, start = _damaged(tmp_path, lambda raw, s: raw[:-1])  # the final chunk cut
    _fails_at(p, start + 6 * n, "chunk 6")


def test_bytes_appended(tmp_path: Path) -> None:
    p, start = _damaged(tmp_path, lambda raw, s: raw + b"\x00")
    _fails_at(p, start + 6 * (C + TAG), "chunk 6")  # the final chunk is no longer one


def test_a_changed_header_or_another_key(tmp_path: Path) -> None:
    p, start = _damaged(tmp_path, lambda raw, s: raw.replace(b'"id":1', b'"id":2'))
    _fails_at(p, start, "chunk 0")
    _seal(tmp_path / "g.sealed", b"rows\n")
    with pytest.raises(SealedFileError, match="another key"):
        _read(tmp_path / "g.sealed", bytes(32))
    (tmp_path / "h").write_bytes(b"PIN 1234\n")
    with pytest.raises(SealedFileError, match="not a sealed file"):
        _read(tmp_path / "h")


def test_writer_abort_leaves_nothing(tmp_path: Path) -> None:
    p = tmp_path / "f.sealed"
    with pytest.raises(RuntimeError), SealedWriter(p, KEY) as w:
        w.write(b"x" * 1000)
        raise RuntimeError("upload cut")
    assert not p.exists()
    (tmp_path / "exists").touch()
    with pytest.raises(FileExistsError):  # O_EXCL: never an existing file's mode
        SealedWriter(tmp_path / "exists", KEY)


def test_memory_stays_at_a_chunk_whatever_the_size(tmp_path: Path) -> None:
    """32 MiB sealed and read back line by line: tracemalloc's peak stays near one chunk."""
    import tracemalloc

    line = b"8949000000000000001 001010000000001 " + b"A" * 91 + b"\n"  # 128 bytes
    piece = line * 512  # 64 KiB, as the API's body stream gives it
    p = tmp_path / "big.sealed"
    tracemalloc.start()
    try:
        with SealedWriter(p, KEY) as w:
            for _ in range(512):
                w.write(piece)
        _, peak_write = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        n = 0
        with SealedSource(tmp_path / "big.out", p, KEY, "t").open() as f:
            while f.readline(8193):
                n += 1
        _, peak_read = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 512 * 512
    assert peak_write < 1 << 20 and peak_read < 1 << 20, (peak_write, peak_read)
