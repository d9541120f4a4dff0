"""Plays the SIM vendor, for demos and the README tour: reads an order (input) file written by
`simsmith inventory order`, invents the cards' secrets, encrypts Ki and OPc under the transport
key (the vendor's copy of it, given here in hex) and writes the vendor output file (".out").

    .venv/bin/python scripts/vendor_sim.py B0001.inp --transport-key HEX -o B0001.out

A real vendor holds the transport key and the clear secrets; this script does too, so it is for
test networks only. Nothing it invents is printed.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

from hsm_sim.eki import EkiScheme, encrypt_eki
from simcore.identifiers import Iccid, luhn_check_digit

MAX_LINE = 8192  # bytes per line, as simcore.vendor_import.parse reads vendor files


def order_lines(path: Path) -> list[str]:
    """The order file's lines, each read in bounded memory: a line over MAX_LINE bytes stops
    the script with its line and column."""
    lines: list[str] = []
    with open(path, "rb") as f:
        while raw := f.readline(MAX_LINE + 1):
            if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
                raise SystemExit(f"vendor_sim: {path.name}:{len(lines) + 1}:{MAX_LINE + 1}: "
                                 f"line longer than {MAX_LINE} bytes")
            if not lines and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            lines.append(raw.decode("utf-8").rstrip("\r\n"))
    return lines


def read_order(path: Path) -> tuple[dict[str, str], dict[str, str], list[str]]:
    header: dict[str, str] = {}
    start: dict[str, str] = {}
    columns: list[str] = []
    section = "header"
    for raw in order_lines(path):
        line = raw.strip()
        if not line or line.startswith("*"):
            continue
        if line.lower().startswith("var_in_list"):
            section = "input"
            continue
        if line.lower().startswith("var_out:"):
            columns = line.split(":", 1)[1].strip().split("/")
            continue
        key, _, value = line.partition(":")
        (header if section == "header" else start)[key.strip()] = value.strip()
    return header, start, columns


def digits(n: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(n))


def card_row(i: int, start: dict[str, str], columns: list[str], transport: bytes,
             scheme: EkiScheme) -> list[str]:
    body = str(int(Iccid.parse(start["ICCID"]).body) + i).zfill(len(start["ICCID"]) - 1)
    imsi = str(int(start["IMSI"]) + i).zfill(len(start["IMSI"]))
    values = {
        "ICCID": body + str(luhn_check_digit(body)),
        "IMSI": imsi,
        "EKI": encrypt_eki(scheme, transport, secrets.token_bytes(16)).hex().upper(),
        "EOPC": encrypt_eki(scheme, transport, secrets.token_bytes(16)).hex().upper(),
        "PIN1": digits(4), "PUK1": digits(8), "PIN2": digits(4), "PUK2": digits(8),
        "ADM1": digits(8),
        # Access control class: one of 0-9 from the IMSI's last digit (TS 31.102 §4.2.15).
        "ACC": f"{1 << int(imsi[-1]):04X}",
    }
    missing = [c for c in columns if c not in values]
    if missing:
        raise SystemExit(f"vendor_sim: cannot invent column(s) {', '.join(missing)}")
    return [values[c] for c in columns]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("order", type=Path)
    ap.add_argument("--transport-key", required=True, help="the transport key, hex (vendor copy)")
    ap.add_argument("--scheme", default=EkiScheme.AES128_ECB.value,
                    choices=[s.value for s in EkiScheme])
    ap.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args()
    transport = bytes.fromhex(args.transport_key)
    header, start, columns = read_order(args.order)
    quantity = int(header["Quantity"])
    lines = ["*", "* HEADER DESCRIPTION", "*", "Customer     : simsmith demo"]
    lines += [f"{k:<13}: {v}" for k, v in header.items()]
    lines += ["*", "* INPUT VARIABLES", "*", "Var_In_List:"]
    lines += [f"{k}: {v}" for k, v in start.items()]
    lines += ["*", "* OUTPUT VARIABLES", "*", "var_out: " + "/".join(columns)]
    scheme = EkiScheme(args.scheme)
    lines += [" ".join(card_row(i, start, columns, transport, scheme)) for i in range(quantity)]
    args.output.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output}: {quantity} cards", file=sys.stderr)


if __name__ == "__main__":
    main()
