"""`simsmith range`: the operator's ICCID, IMSI and MSISDN ranges."""

from __future__ import annotations

import typer

from simcore import ranges
from tools.common import JsonOpt, actor, engine, fail, handle_errors, print_json, print_table

app = typer.Typer(no_args_is_help=True)


@app.command("add")
@handle_errors
def add(
    kind: str = typer.Argument(..., help="iccid | imsi | msisdn"),
    first: str = typer.Argument(..., help="First member (an ICCID with its check digit)."),
    last: str = typer.Argument(..., help="Last member, same length."),
    name: str = typer.Option(..., "--name", help="A unique name for the range."),
    mnc_length: int | None = typer.Option(None, "--mnc-length",
                                          help="IMSI: MNC length (2 or 3) of the operator."),
    as_json: bool = JsonOpt,
) -> None:
    """Add a range; overlaps with existing ranges are refused. MSISDN ranges: use
    `simsmith msisdn add-range`, which also fills the number pool."""
    if kind == "msisdn":
        fail("MSISDN ranges fill the number pool: use `simsmith msisdn add-range`", 2)
    r = ranges.add_range(engine(), kind, first, last, name=name, mnc_length=mnc_length,
                         actor=actor())
    size = len(ranges.range_of(r))
    if as_json:
        print_json({"name": r.name, "kind": r.kind, "first": first, "last": last, "size": size})
    else:
        print_table(None, ["name", "kind", "first", "last", "size"],
                    [(r.name, r.kind, first, last, size)])


@app.command("list")
@handle_errors
def list_(as_json: bool = JsonOpt) -> None:
    """List ranges with how much of each is used."""
    rows = []
    for r in ranges.list_ranges(engine()):
        rng = ranges.range_of(r)
        rows.append((r.name, r.kind, rng.value_at(0), rng.value_at(len(rng) - 1),
                     r.next_offset, len(rng)))
    if as_json:
        print_json([dict(zip(("name", "kind", "first", "last", "used", "size"), r, strict=True))
                    for r in rows])
    else:
        print_table("ranges", ["name", "kind", "first", "last", "used", "size"], rows)
