"""PIN/PUK/ADM codes on the virtual card with retry counters (ETSI TS 102 221 §9.5).

A card never lets a code out: it only answers whether a candidate matches. The emulator keeps
the same property in its state file: each code is held as a verifier (HMAC-SHA-256 under a
random per-code salt), never as the code, so a copied state file does not reveal PIN, PUK or
ADM (docs/cards.md "State file"). An 8-byte code has little entropy, so the file stays mode 0600.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass


def _verifier(salt: bytes, code: bytes) -> bytes:
    return hmac.new(salt, code, hashlib.sha256).digest()


@dataclass
class Verifier:
    """A salted HMAC of one code: `matches(candidate)` in constant time; no way back."""

    salt: bytes
    mac: bytes

    @classmethod
    def of(cls, code: bytes) -> Verifier:
        salt = os.urandom(16)
        return cls(salt, _verifier(salt, code))

    def matches(self, candidate: bytes) -> bool:
        return hmac.compare_digest(self.mac, _verifier(self.salt, candidate))

    def __repr__(self) -> str:
        return "Verifier(<hidden>)"

    def to_json(self) -> str:
        return f"hmac-sha256:{self.salt.hex()}:{self.mac.hex()}"

    @classmethod
    def from_json(cls, text: str) -> Verifier:
        kind, salt, mac = text.split(":")
        if kind != "hmac-sha256":
            raise ValueError(f"unknown verifier kind {kind!r}")
        return cls(bytes.fromhex(salt), bytes.fromhex(mac))


@dataclass
class Code:
    """One key reference: verifier, tries left / max, optional PUK verifier, enabled flag."""

    verifier: Verifier
    max_tries: int = 3
    tries: int = 3
    puk: Verifier | None = None
    puk_max: int = 10
    puk_tries: int = 10
    enabled: bool = True

    @classmethod
    def new(cls, value: bytes, *, puk: bytes | None = None, enabled: bool = True) -> Code:
        return cls(Verifier.of(value), puk=Verifier.of(puk) if puk is not None else None,
                   enabled=enabled)

    def __repr__(self) -> str:
        return f"Code(tries={self.tries}/{self.max_tries}, enabled={self.enabled})"

    @property
    def blocked(self) -> bool:
        return self.tries == 0

    def check(self, candidate: bytes) -> bool:
        """Compare and update the counter (a wrong code costs one try)."""
        if self.verifier.matches(candidate):
            self.tries = self.max_tries
            return True
        self.tries = max(0, self.tries - 1)
        return False

    def check_puk(self, candidate: bytes) -> bool:
        if self.puk is None:
            return False
        if self.puk.matches(candidate):
            self.puk_tries = self.puk_max
            return True
        self.puk_tries = max(0, self.puk_tries - 1)
        return False

    def set_value(self, value: bytes) -> None:
        """A new code (CHANGE PIN, UNBLOCK PIN): a fresh salt and verifier."""
        self.verifier = Verifier.of(value)

    def to_json(self) -> dict[str, object]:
        return {"verifier": self.verifier.to_json(), "max_tries": self.max_tries,
                "tries": self.tries, "puk": self.puk.to_json() if self.puk else None,
                "puk_max": self.puk_max, "puk_tries": self.puk_tries, "enabled": self.enabled}

    @classmethod
    def from_json(cls, d: dict[str, object]) -> Code:
        # State files written before verifiers held the code itself ("value"): turn it into a
        # verifier on load; the next save drops the clear code.
        if "verifier" in d:
            verifier = Verifier.from_json(str(d["verifier"]))
        else:
            verifier = Verifier.of(bytes.fromhex(str(d["value"])))
        puk_raw = d.get("puk")
        puk: Verifier | None = None
        if puk_raw:
            text = str(puk_raw)
            puk = Verifier.from_json(text) if ":" in text else Verifier.of(bytes.fromhex(text))
        return cls(verifier, int(str(d["max_tries"])), int(str(d["tries"])), puk,
                   int(str(d["puk_max"])), int(str(d["puk_tries"])), bool(d["enabled"]))


def pad8(text: str) -> bytes:
    return text.encode() + b"\xff" * (8 - len(text))
