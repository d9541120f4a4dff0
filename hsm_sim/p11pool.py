"""A pool of PKCS#11 sessions on one token, each used by one thread at a time (PKCS#11 v2.40
§6.7.7: a session serves one thread at a time; login state is per application and token, so a
pool session opened after the login is already logged in). Opened lazily up to `size`; a nested
call in the thread that holds a session reuses it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from hsm_sim.errors import BadLength, HsmError, HsmLocked
from hsm_sim.p11raw import RawSession

DEFAULT_SESSIONS = 4

_P = ParamSpec("_P")
_R = TypeVar("_R")


class Entry:
    """A pooled session and the storage KEK's handle as that session sees it."""

    __slots__ = ("gcm", "kwp", "lock", "raw", "session", "storage")

    def __init__(self, session: Any, lock: threading.RLock) -> None:
        self.session = session
        self.lock = lock
        self.storage: Any = None
        self.kwp: Any = None  # v2: wraps token keys (RFC 5649)
        self.gcm: Any = None  # v2: AES-GCM for values and for token-key blobs' tags
        self.raw: RawSession | None = None


class SessionPool:
    """Up to `size` sessions, opened on demand; each used by one thread at a time."""

    def __init__(self, opener: Callable[[], Any], size: int,
                 shared_lock: threading.RLock | None) -> None:
        if size < 1:
            raise BadLength(f"a PKCS#11 session pool needs at least 1 session, got {size}")
        self._open = opener
        self.size = size
        self._shared = shared_lock
        self._cond = threading.Condition()
        self._idle: list[Entry] = []
        self._all: list[Entry] = []
        self._opening = 0
        self._closed = False
        self._local = threading.local()

    def current(self) -> Entry:
        entry: Entry | None = getattr(self._local, "entry", None)
        if entry is None:
            raise HsmError("internal: a token call outside a pooled session")
        return entry

    @contextmanager
    def entry(self, prepare: Callable[[Entry], None]) -> Iterator[Entry]:
        held: Entry | None = getattr(self._local, "entry", None)
        if held is not None:  # nested call in this thread: its session
            yield held
            return
        entry = self._checkout(prepare)
        self._local.entry = entry
        try:
            with entry.lock:
                yield entry
        finally:
            self._release(entry)

    def run(self, prepare: Callable[[Entry], None], fn: Callable[_P, _R],
            *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """`fn(*args, **kwargs)` on a checked-out session: `entry()` without a generator (every
        public Pkcs11Hsm call pays this; ~1.5 µs less per call)."""
        if getattr(self._local, "entry", None) is not None:
            return fn(*args, **kwargs)
        entry = self._checkout(prepare)
        self._local.entry = entry
        try:
            with entry.lock:
                return fn(*args, **kwargs)
        finally:
            self._release(entry)

    def _release(self, entry: Entry) -> None:
        self._local.entry = None
        with self._cond:
            self._idle.append(entry)
            self._cond.notify()

    def _checkout(self, prepare: Callable[[Entry], None]) -> Entry:
        with self._cond:
            while True:
                if self._closed:
                    raise HsmLocked("the PKCS#11 sessions are closed")
                if self._idle:
                    return self._idle.pop()
                if len(self._all) + self._opening < self.size:
                    self._opening += 1
                    break
                self._cond.wait()
        entry: Entry | None = None
        try:
            lock = self._shared or threading.RLock()
            with lock:
                entry = Entry(self._open(), lock)
                self._local.entry = entry
                try:
                    prepare(entry)
                finally:
                    self._local.entry = None
        except BaseException:
            if entry is not None:
                entry.session.close()
            with self._cond:
                self._opening -= 1
                self._cond.notify()
            raise
        with self._cond:
            self._opening -= 1
            self._all.append(entry)
        return entry

    def close(self) -> None:
        with self._cond:
            self._closed = True
            entries, self._all, self._idle = self._all, [], []
        for entry in entries:
            with entry.lock:
                entry.session.close()
