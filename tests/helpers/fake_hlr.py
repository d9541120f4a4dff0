"""An in-memory HLR for unit tests only (the tested adapter is simcore.ports.osmo_hlr against a
real osmo-hlr). It counts every effect, and can be told to be down or to refuse."""

from __future__ import annotations

import fcntl
import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
        self.subscribers[sub.imsi] = Entry(sub.msisdn, sub.allowed)

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


class FileHlr:
    """The fake HLR kept in a JSON file, so a worker process that is killed and the one that
    resumes share it; `effects` lists every change it made (a repeat that changes nothing is
    not an effect). flock(2) serialises processes."""

    def __init__(self, path: str) -> None:
        self.path = path

    def _change(self, fn: Callable[[dict[str, Any]], str | None]) -> None:
        with open(self.path + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = json.loads(Path(self.path).read_text()) if Path(self.path).exists() \
                    else {"subscribers": {}, "effects": []}
                effect = fn(state["subscribers"])
                if effect:
                    state["effects"].append(effect)
                Path(self.path).write_text(json.dumps(state))
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def state(self) -> dict[str, Any]:
        p = Path(self.path)
        return json.loads(p.read_text()) if p.exists() else {"subscribers": {}, "effects": []}

    def provision(self, sub: HlrSubscriber) -> None:
        def f(subs: dict[str, Any]) -> str | None:
            if sub.imsi in subs:
                return None
            subs[sub.imsi] = {"msisdn": sub.msisdn, "allowed": sub.allowed}
            return f"create {sub.imsi}"
        self._change(f)

    def set_msisdn(self, imsi: str, msisdn: str | None) -> None:
        def f(subs: dict[str, Any]) -> str | None:
            if subs[imsi]["msisdn"] == msisdn:
                return None
            subs[imsi]["msisdn"] = msisdn
            return f"msisdn {imsi} {msisdn}"
        self._change(f)

    def set_access(self, imsi: str, *, allowed: bool) -> None:
        def f(subs: dict[str, Any]) -> str | None:
            if subs[imsi]["allowed"] == allowed:
                return None
            subs[imsi]["allowed"] = allowed
            return f"access {imsi} {allowed}"
        self._change(f)

    def remove(self, imsi: str) -> None:
        def f(subs: dict[str, Any]) -> str | None:
            return f"remove {imsi}" if subs.pop(imsi, None) is not None else None
        self._change(f)
