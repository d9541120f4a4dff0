"""Malformed SAIP packages (issue 13 item 2): every corruption of a TS.48 package either decodes
or raises SaipDecodeError naming the offset, within a work budget proportional to its size.

The budget is counted, not timed: a profile hook counts Python and C function calls during the
decode and aborts past 16 calls per package byte (an intact TS.48 package takes ~2). A decoder
that loops or allocates without bound is stopped by it and fails the test deterministically.
"""

from __future__ import annotations

import contextlib
import sys
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from esim.errors import EsimError, SaipDecodeError
from esim.saip import ProfilePackage, decode
from esim.saip.codec import split_tlvs
from esim.saip.element import masked
from esim.saip.schema import spec
from esim.saip.validate import validate
from tests.esim.vectors import VECTORS
from tools.esim_cli import app

PROFILES = ["ts48v7_saip23_NoBERTLV", "ts48v7_saip23_BERTLV_SUCI"]
DER = {name: (VECTORS / "ts48" / f"{name}.der").read_bytes() for name in PROFILES}
CALLS_PER_BYTE = 16


class BudgetExceeded(BaseException):
    """The decode made more calls than its size allows (a BaseException, so that no handler in
    the code under test can take it for a decode error)."""


def _lengths(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int]]:
    """(offset, octets) of every length field in a well-formed DER buffer, nested ones too."""
    pos, end = start, len(data) if end is None else end
    while pos < end:
        constructed = data[pos] & 0x20
        if data[pos] & 0x1F == 0x1F:
            pos += 1
            while data[pos] & 0x80:
                pos += 1
        pos += 1
        octets = 1 + (data[pos] & 0x7F if data[pos] & 0x80 else 0)
        length = int.from_bytes(data[pos + 1:pos + octets], "big") if octets > 1 else data[pos]
        yield pos, octets
        content = pos + octets
        if constructed:
            yield from _lengths(data, content, content + length)
        pos = content + length


LENGTHS = {name: list(_lengths(der)) for name, der in DER.items()}


def _use(package: ProfilePackage) -> None:
    """What `simsmith esim inspect` does with a decoded package."""
    for attr in ("iccid", "ef_iccid", "imsis", "algorithms", "services"):
        with contextlib.suppress(EsimError, KeyError):
            getattr(package, attr)
    for element in package.elements:
        masked(element.value)
        _ = element.identification, element.mandated
    with contextlib.suppress(EsimError):
        validate(package.elements)


def check(data: bytes) -> SaipDecodeError | None:
    """Decode and use `data` under the call budget; the typed error it raised, or None."""
    budget = CALLS_PER_BYTE * len(data) + 1000
    calls = 0
    spec()  # the schema compiles once, outside any budget

    def count(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1
            if calls > budget:
                raise BudgetExceeded(f"more than {budget} calls for {len(data)} bytes")

    sys.setprofile(count)
    try:
        _use(ProfilePackage.from_der(data))
    except SaipDecodeError as e:
        assert e.offset is not None and 0 <= e.offset <= len(data), str(e)
        assert f"offset {e.offset}" in str(e)
        return e
    finally:
        sys.setprofile(None)
    return None


def test_intact_packages_fit_the_budget() -> None:
    for der in DER.values():
        assert check(der) is None


def test_reported_hang_fails_fast_naming_the_offset() -> None:
    """Byte 5129 of the BERTLV_SUCI package set to 0x9b ran > 45 s and > 500 MB."""
    data = bytearray(DER["ts48v7_saip23_BERTLV_SUCI"])
    data[5129] = 0x9B
    decode(DER["ts48v7_saip23_NoBERTLV"])  # compile the schema outside the measurement
    tracemalloc.start()
    try:
        error = check(bytes(data))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert error is not None and error.offset == 5129 and error.element == 9
    assert "opt-usim.ef-cmi" in str(error) and "0x9b" in str(error)
    assert peak < 100 * len(data)


def test_bad_utf8_is_a_decode_error() -> None:
    data = bytearray(DER["ts48v7_saip23_NoBERTLV"])
    at = data.index(b"GSMA Generic eUICC Test Profile")
    data[at + 4] = 0xFF
    error = check(bytes(data))
    assert error is not None and error.offset == at + 4 and "profileType" in str(error)


def test_unknown_algorithm_choice_is_reported_not_a_type_error() -> None:
    data = bytearray(DER["ts48v7_saip23_NoBERTLV"])
    # algoConfiguration [1] holding its CHOICE's algoParameter [1]
    at = data.index(bytes.fromhex("a12ca12a8001")) + 2
    data[at] = 0xA5  # an alternative this schema does not know
    assert check(bytes(data)) is None
    assert ProfilePackage.from_der(bytes(data)).algorithms[0] == "unknown"


@pytest.mark.parametrize("name", PROFILES)
def test_every_truncation_of_the_first_elements(name: str) -> None:
    der = DER[name]
    boundaries = {end for _, end in split_tlvs(der)} | {0}
    for cut in range(0, 400, 3):
        assert (check(der[:cut]) is None) == (cut in boundaries), cut


@pytest.mark.parametrize("name", PROFILES)
@pytest.mark.parametrize("octets", [b"\x00", b"\x7f", b"\x81\xff", b"\x84\xff\xff\xff\xff",
                                    b"\xff", b"\x80"])
def test_length_fields_corrupted(name: str, octets: bytes) -> None:
    der = DER[name]
    for pos, size in LENGTHS[name][len(octets)::97]:
        check(der[:pos] + octets + der[pos + size:])


_mutation = st.one_of(
    st.tuples(st.just("flip"), st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(1, 255)),
                                        min_size=1, max_size=4)),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 20)),
    st.tuples(st.just("length"), st.integers(0, 1 << 20),
              st.sampled_from([b"\x00", b"\x01", b"\x7f", b"\x80", b"\x81\x00", b"\x82\xff\xff",
                               b"\x83\x01\x00\x00", b"\x84\x7f\xff\xff\xff", b"\xff"])),
)


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@pytest.mark.slow
@given(st.sampled_from(PROFILES), _mutation)
def test_fuzz_ts48(name: str, mutation: tuple[Any, ...]) -> None:
    der = bytearray(DER[name])
    if mutation[0] == "flip":
        for pos, xor in mutation[1]:
            der[pos % len(der)] ^= xor
    elif mutation[0] == "truncate":
        der = der[:mutation[1] % len(der)]
    else:
        pos, size = LENGTHS[name][mutation[1] % len(LENGTHS[name])]
        der[pos:pos + size] = mutation[2]
    check(bytes(der))


def test_cli_inspect_prints_one_line_with_the_offset(tmp_path: Any) -> None:
    data = bytearray(DER["ts48v7_saip23_BERTLV_SUCI"])
    data[5129] = 0x9B
    path = tmp_path / "corrupt.der"
    path.write_bytes(bytes(data))
    result = CliRunner().invoke(app, ["inspect", str(path)])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: profile element #9")
    assert "at offset 5129" in lines[0] and "Traceback" not in result.output
    as_json = CliRunner().invoke(app, ["inspect", str(path), "--json"])
    assert as_json.exit_code == 1 and "at offset 5129" in as_json.output


def _members(tlv: bytes) -> list[bytes]:
    """The member TLVs of the ProfileHeader (one-octet tags and lengths)."""
    pos, members = 2 if tlv[1] < 0x80 else 2 + (tlv[1] & 0x7F), []
    while pos < len(tlv):
        members.append(tlv[pos:pos + 2 + tlv[pos + 1]])
        pos += 2 + tlv[pos + 1]
    return members


def _header_with(change: Any) -> bytes:
    """The NoBERTLV package with its ProfileHeader's member TLVs changed by `change`."""
    der = DER["ts48v7_saip23_NoBERTLV"]
    (start, end), *_ = split_tlvs(der)
    members = change(_members(der[start:end]))
    content = b"".join(members)
    assert len(content) < 256
    return b"\xa0\x81" + bytes([len(content)]) + content + der[end:]


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: [m[1], m[0], *m[2:]], "header: member major-version out of order or repeated"),
    (lambda m: [m[0], m[0], *m[1:]], "member major-version out of order or repeated"),
    (lambda m: [m[0], m[1], m[2], *m[4:]], "header: mandatory member iccid missing"),
    (lambda m: [m[0], b"\x81\x80" + m[1][2:] + b"\x00\x00", *m[2:]], "indefinite length"),
    (lambda m: [m[0], b"\x81\x85\x00\x00\x00\x00\x01" + m[1][2:], *m[2:]], "does not fit"),
    (lambda m: [m[0], b"\x81\x00", *m[2:]], "header.minor-version: INTEGER with no contents"),
    (lambda m: [*m[:4], b"\xa5\x04\x81\x02\x01\x02", *m[5:]],
     "eUICC-Mandatory-services.usim: NULL with contents"),
])
def test_strict_der(change: Any, message: str) -> None:
    error = check(_header_with(change))
    assert error is not None and message in str(error), error
    assert error.element == 1
