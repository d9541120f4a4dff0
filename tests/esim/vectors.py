"""Loads the test-vector files under tests/vectors/ into parametrised cases."""

from __future__ import annotations

from pathlib import Path

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


def load_sections(relative: str) -> dict[str, list[list[str]]]:
    """Split a '|'-separated vector file into its [sections]; '#' lines are comments."""
    sections: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for line in (VECTORS / relative).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"{relative}: data before the first [section]"
        current.append([cell.strip() for cell in line.split("|")])
    return sections
