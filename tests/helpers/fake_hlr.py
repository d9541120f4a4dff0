"""An in-memory HLR for unit tests only (the tested adapter is simcore.ports.osmo_hlr against a
real osmo-hlr). It counts every effect, and can be told to be down or to refuse."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from simcore.ports.hlr import HlrRefused, HlrSubscriber, HlrUnavailable


@dataclass
class Entry:
    msisdn: str | None
    allowed: bool = True


@dataclass
class FakeHlr:
    subscribers: dict[str, Entry] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    down: int = 0  # fail this many calls as unreachable (-1: until told otherwise)
    refuse: set[str] = field(default_factory=set)  # operations refused for good
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _enter(self, op: str) -> None:
        with self._lock:
            if self.down:
                if self.down > 0:
                    self.down -= 1
                self.calls[f"{op}:down"] += 1
                raise HlrUnavailable(f"fake HLR down ({op})")
            if op in self.refuse:
                raise HlrRefused(f"fake HLR refuses {op}")
            self.calls[op] += 1

    def provision(self, sub: HlrSubscriber) -> None:
        self._enter("provision")
        for imsi, e in self.subscribers.items():
            if sub.msisdn and e.msisdn == sub.msisdn and imsi != sub.imsi:
                raise HlrRefused(f"MSISDN {sub.msisdn} is already {imsi}'s")
        if sub.imsi not in self.subscribers:
            self.calls["created"] += 1
        self.subscribers[sub.imsi] = Entry(sub.msisdn)

    def set_msisdn(self, imsi: str, msisdn: str | None) -> None:
        self._enter("set_msisdn")
        self._get(imsi).msisdn = msisdn

    def set_access(self, imsi: str, *, allowed: bool) -> None:
        self._enter("set_access")
        self._get(imsi).allowed = allowed

    def remove(self, imsi: str) -> None:
        self._enter("remove")
        self.subscribers.pop(imsi, None)

    def _get(self, imsi: str) -> Entry:
        if imsi not in self.subscribers:
            raise HlrRefused(f"no subscriber {imsi}")
        return self.subscribers[imsi]
