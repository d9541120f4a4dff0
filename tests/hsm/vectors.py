"""Loader for the published test vectors under tests/vectors/<spec>/.

A vector file opens with `#` comment lines naming its document, version and table; records are
blocks of `name = value` lines separated by blank lines.
"""

from __future__ import annotations

from pathlib import Path

import pytest

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


def load(relpath: str) -> list[dict[str, str]]:
    text = (VECTORS / relpath).read_text()
    records: list[dict[str, str]] = []
    for block in text.split("\n\n"):
        rec = {}
        for line in block.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, _, value = line.partition(" = ")
            rec[name.strip()] = value.strip()
        if rec:
            records.append(rec)
    assert records, f"no vectors in {relpath}"
    return records


def cases(relpath: str, id_field: str = "set") -> list:  # type: ignore[type-arg]
    """Parametrised cases, one per record, with readable ids."""
    return [pytest.param(r, id=f"{relpath.split('/')[-1]}:{r.get(id_field, i)}")
            for i, r in enumerate(load(relpath))]


def h(rec: dict[str, str], name: str) -> bytes:
    return bytes.fromhex(rec[name])
