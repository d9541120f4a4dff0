"""HSM test helpers: a key slot, an audit sink that records, and a key's bytes read back through
the HSM's own patch path (for comparisons inside tests only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hsm_sim.binding import wrapped_length
from hsm_sim.hsm import Hsm
from hsm_sim.keyref import KeyRef


@dataclass(frozen=True)
class Slot:
    name: str
    offset: int
    length: int


class Recorder:
    """An hsm_sim AuditSink keeping every record."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def record(self, action: str, subject: str, details: dict[str, Any]) -> None:
        self.records.append((action, subject, details))


def clear(hsm: Hsm, ref: KeyRef) -> bytes:
    """A key's bytes, for comparisons inside a test (through the HSM's own patch path)."""
    buf = bytearray(wrapped_length(ref.blob))
    hsm.patch_keys(buf, [Slot("key", 0, len(buf))], [ref])
    return bytes(buf)
