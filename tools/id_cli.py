"""`simsmith id`: check and explain identifiers."""

from __future__ import annotations

from typing import Any

import typer

from simcore.identifiers import (
    Eid,
    Iccid,
    Imsi,
    InvalidIdentifier,
    Msisdn,
    guess_kind,
    parse_identifier,
)
from tools.common import JsonOpt, fail, print_json, print_table

app = typer.Typer(no_args_is_help=True)

KINDS = ("iccid", "imsi", "msisdn", "eid")


def describe(value: Any) -> dict[str, Any]:
    if isinstance(value, Iccid):
        return {"kind": "iccid", "value": value.digits, "check_digit": value.check_digit,
                "country_code": value.country_code, "ef_iccid": value.to_bcd().hex().upper()}
    if isinstance(value, Imsi):
        return {"kind": "imsi", "value": value.digits, "mcc": value.mcc, "mnc": value.mnc,
                "msin": value.msin, "ef_imsi": value.to_ef_imsi().hex().upper()}
    if isinstance(value, Msisdn):
        return {"kind": "msisdn", "value": value.digits, "e164": value.e164,
                "country_code": value.country_code, "national_number": value.national_number}
    assert isinstance(value, Eid)
    return {"kind": "eid", "value": value.digits, "check_digits": value.digits[30:]}


@app.command("check")
def check(
    value: str = typer.Argument(..., help="The identifier to check."),
    kind: str | None = typer.Option(None, "--kind", help="iccid|imsi|msisdn|eid (guessed if "
                                    "omitted)."),
    mnc_length: int | None = typer.Option(None, "--mnc-length", help="IMSI: MNC length 2 or 3 "
                                          "if known."),
    as_json: bool = JsonOpt,
) -> None:
    """Validate an identifier; exit 0 only when it is valid."""
    if kind is not None and kind not in KINDS:
        fail(f"--kind {kind!r}: expected one of {', '.join(KINDS)}", 2)
    k = kind or guess_kind(value)
    try:
        parsed = (Imsi.parse(value, mnc_length) if k == "imsi"
                  else parse_identifier(value, k))  # type: ignore[arg-type]
    except InvalidIdentifier as e:
        if as_json:
            print_json({"valid": False, "kind": k, "field": e.field, "error": e.reason,
                        "position": e.position, "expected": e.expected})
            raise typer.Exit(1) from e
        fail(f"invalid {k}: {e}")
        return
    info = describe(parsed)
    if as_json:
        print_json({"valid": True, **info})
    else:
        print_table(f"valid {k}", ["field", "value"], [(a, b) for a, b in info.items()])
