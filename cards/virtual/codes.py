"""PIN/PUK/ADM codes on the virtual card with retry counters (ETSI TS 102 221 §9.5)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass


@dataclass
class Code:
    """One key reference: value, tries left / max, optional PUK, enabled flag."""

    value: bytes
    max_tries: int = 3
    tries: int = 3
    puk: bytes | None = None
    puk_max: int = 10
    puk_tries: int = 10
    enabled: bool = True

    def __repr__(self) -> str:
        return f"Code(tries={self.tries}/{self.max_tries}, enabled={self.enabled})"

    @property
    def blocked(self) -> bool:
        return self.tries == 0

    def check(self, candidate: bytes) -> bool:
        """Compare and update the counter (a wrong code costs one try)."""
        if hmac.compare_digest(self.value, candidate):
            self.tries = self.max_tries
            return True
        self.tries = max(0, self.tries - 1)
        return False

    def check_puk(self, candidate: bytes) -> bool:
        if self.puk is None:
            return False
        if hmac.compare_digest(self.puk, candidate):
            self.puk_tries = self.puk_max
            return True
        self.puk_tries = max(0, self.puk_tries - 1)
        return False

    def to_json(self) -> dict[str, object]:
        return {"value": self.value.hex(), "max_tries": self.max_tries, "tries": self.tries,
                "puk": self.puk.hex() if self.puk else None, "puk_max": self.puk_max,
                "puk_tries": self.puk_tries, "enabled": self.enabled}

    @classmethod
    def from_json(cls, d: dict[str, object]) -> Code:
        puk = d.get("puk")
        return cls(bytes.fromhex(str(d["value"])), int(str(d["max_tries"])), int(str(d["tries"])),
                   bytes.fromhex(str(puk)) if puk else None, int(str(d["puk_max"])),
                   int(str(d["puk_tries"])), bool(d["enabled"]))


def pad8(text: str) -> bytes:
    return text.encode() + b"\xff" * (8 - len(text))
