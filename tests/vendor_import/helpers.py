"""Vendor files for tests: valid ones in several layouts and malformed ones, written by code so
every key is known to the test (and to nobody else)."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hsm_sim.eki import EkiScheme, encrypt_eki
from hsm_sim.hsm import KekPurpose
from hsm_sim.kcv import kcv
from hsm_sim.soft import SoftHsm
from simcore.identifiers import luhn_check_digit

TRANSPORT_KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
TRANSPORT_KCV = kcv(TRANSPORT_KEY).hex().upper()
ICCID_BODY = 894900000000000100  # 18 digits -> 19-digit ICCIDs
IMSI_START = 1010000000100  # 001010000000100 as 15 digits
OUT_COLUMNS = ("ICCID", "IMSI", "EKI", "EOPC", "PIN1", "PUK1", "PIN2", "PUK2", "ADM1", "ACC")


def iccid(i: int, body: int = ICCID_BODY) -> str:
    b = str(body + i)
    return b + str(luhn_check_digit(b))


def imsi(i: int, start: int = IMSI_START) -> str:
    return str(start + i).zfill(15)


def secret(label: str, i: int, n: int = 16) -> bytes:
    return hashlib.sha256(f"{label}/{i}".encode()).digest()[:n]


def make_hsm(directory: Path) -> SoftHsm:
    warnings.simplefilter("ignore")
    hsm = SoftHsm.init(directory, components=[bytes(range(1, 33)), bytes(range(7, 39))])
    hsm.kek_add("vendor1", KekPurpose.TRANSPORT, [TRANSPORT_KEY])
    hsm.kek_add("hlr-test", KekPurpose.EXPORT, insecure_clear=True)
    hsm.kek_add("hss1", KekPurpose.EXPORT, [bytes(range(100, 116))])
    return hsm


@dataclass
class Card:
    iccid: str
    imsi: str
    ki: bytes
    opc: bytes
    values: dict[str, str]


def cards(n: int, columns: Sequence[str] = OUT_COLUMNS, *, encrypted: bool = True,
          offset: int = 0) -> list[Card]:
    out = []
    for j in range(offset, offset + n):
        ki, opc = secret("ki", j), secret("opc", j)
        v = {"ICCID": iccid(j), "IMSI": imsi(j),
             "EKI": encrypt_eki(EkiScheme.AES128_ECB, TRANSPORT_KEY, ki).hex().upper(),
             "EOPC": encrypt_eki(EkiScheme.AES128_ECB, TRANSPORT_KEY, opc).hex().upper(),
             "KI": (encrypt_eki(EkiScheme.AES128_ECB, TRANSPORT_KEY, ki) if encrypted
                    else ki).hex().upper(),
             "OPC": (encrypt_eki(EkiScheme.AES128_ECB, TRANSPORT_KEY, opc) if encrypted
                     else opc).hex().upper(),
             "PIN1": "1234", "PUK1": f"{12345678 + j:08d}", "PIN2": "0000",
             "PUK2": f"{87654321 - j:08d}", "ADM1": f"{40000000 + j:08d}",
             "ACC": f"{1 << (j % 10):04X}",
             "KIC1": secret("kic", j).hex(), "KID1": secret("kid", j).hex(),
             "KIK1": secret("kik", j).hex()}
        out.append(Card(v["ICCID"], v["IMSI"], ki, opc, v))
    return out


def out_text(rows: Sequence[Card], columns: Sequence[str] = OUT_COLUMNS, *,
             quantity: int | None = None, transport: str | None = "vendor1",
             kcv_value: str | None = TRANSPORT_KCV, var_in: bool = True,
             names: Sequence[str] | None = None,
             mutate: Callable[[list[list[str]]], None] | None = None) -> str:
    """A vendor .out file. `names` renames the columns as written (vendor aliases)."""
    lines = ["*", "* HEADER DESCRIPTION", "*", "Customer     : Test Mobile",
             f"Quantity     : {len(rows) if quantity is None else quantity}",
             "Type         : sysmoISIM-SJA2", "Profile      : P1", "Batch        : B-TEST-1"]
    if transport:
        lines.append(f"Transport_key: {transport}" + (f" KCV={kcv_value}" if kcv_value else ""))
    if var_in:
        lines += ["*", "* INPUT VARIABLES", "*", "Var_In_List:", f"ICCID: {iccid(0)}",
                  f"IMSI: {imsi(0)}"]
    lines += ["*", "* OUTPUT VARIABLES", "*", "var_out: " + "/".join(names or columns)]
    table = [[c.values[col] for col in columns] for c in rows]
    if mutate:
        mutate(table)
    lines += [" ".join(r) for r in table]
    return "\n".join(lines) + "\n"


def csv_text(rows: Sequence[Card], columns: Sequence[str], sep: str = ",") -> str:
    lines = [sep.join(columns)] + [sep.join(c.values[col] for col in columns) for c in rows]
    return "\n".join(lines) + "\n"


def write(path: Path, text: str, *, crlf: bool = False, bom: bool = False) -> Path:
    if crlf:
        text = text.replace("\n", "\r\n")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path
