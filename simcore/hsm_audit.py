"""The HSM's audit sink (hsm_sim.hsm.AuditSink) writing into simcore's audit log.

Every key custody operation the HSM reports (kek.add, key.generate, key.patch, key.reveal,
key.export, auth.milenage, ...; docs/hsm.md "Audit") becomes an audit event with subject type
`hsm` and the key's owner as subject, so `simsmith audit list --subject <ICCID>` shows what the
HSM did with a SIM's keys. Details are the HSM's own (names, types, KCVs, counts; never a key)
and go through the audit log's secret check.

Cost on hot paths: records are buffered and written in one transaction per flush, never inside
the caller's transaction (on SQLite that would wait on the caller's own write lock). Repeated
computations on one subject within a flush (AGGREGATED: Milenage/GSM/TUAK vectors, key patching
and generation) become one event with `calls` (and the summed `count`). A flush happens when the
opener closes (the end of a CLI command, the API's shutdown), every `interval` seconds and when
`max_pending` records wait (both from a background thread, so a bulk run holds bounded memory).
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

from sqlalchemy import Engine

from simcore import audit
from simcore.db import transaction
from simcore.log import get_logger
from simcore.records import canonical_json

log = get_logger(__name__)

SUBJECT_TYPE = "hsm"
# Computations repeated per subject on hot paths: one event per subject and flush.
AGGREGATED = frozenset({"auth.milenage", "auth.gsm", "auth.tuak", "auth.resync", "key.patch",
                        "key.generate", "key.sign"})


_SINKS: weakref.WeakSet[AuditLogSink] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for sink in list(_SINKS):
        sink._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class AuditLogSink:
    """hsm_sim.hsm.AuditSink into simcore's audit log, as `actor`; thread-safe.

    A forked child (esim build-batch's workers) inherits a copy: there it records nothing (its
    locks may have been held by the parent's flusher at the fork, and the parent's records are
    the parent's to write); the parent process audits that work itself."""

    def __init__(self, engine: Engine, actor: str, *, interval: float = 1.0,
                 max_pending: int = 10_000) -> None:
        self.engine = engine
        self.actor = actor
        self.interval = interval
        self.max_pending = max_pending
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._seq = 0  # keys records that are not aggregated apart
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._disabled = False
        _SINKS.add(self)

    def _forked(self) -> None:
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending = {}
        self._thread = None
        self._disabled = True

    def __repr__(self) -> str:
        return f"AuditLogSink(actor={self.actor!r}, pending={len(self._pending)})"

    def record(self, action: str, subject: str, details: dict[str, Any]) -> None:
        if self._disabled:
            return
        with self._lock:
            if action in AGGREGATED:
                rest = {k: v for k, v in details.items() if k != "count"}
                key = (action, subject, canonical_json(rest))
            else:
                self._seq += 1
                key = (action, subject, str(self._seq))
            held = self._pending.get(key)
            if held is None:
                self._pending[key] = dict(details)
            else:
                held["calls"] = held.get("calls", 1) + 1
                if isinstance(details.get("count"), int):
                    held["count"] = held.get("count", 0) + details["count"]
            full = len(self._pending) >= self.max_pending
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="hsm-audit", daemon=True)
                self._thread.start()
        if full:
            self._wake.set()

    def flush(self) -> int:
        """Write what is pending in one transaction; returns how many events were written. On
        failure the records stay pending (and the error is raised)."""
        with self._flush_lock:
            with self._lock:
                batch, self._pending = self._pending, {}
            if not batch:
                return 0
            try:
                with transaction(self.engine) as s:
                    for (action, subject, _), details in batch.items():
                        audit.append(s, actor=self.actor, action=action,
                                     subject_type=SUBJECT_TYPE, subject_id=subject,
                                     details=details)
            except BaseException:
                with self._lock:
                    batch.update(self._pending)
                    self._pending = batch
                raise
            return len(batch)

    def close(self) -> None:
        """Stop the background flusher and write what is pending."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        self.flush()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.flush()
            except Exception as e:  # kept pending; the next flush (or close) tries again
                log.warning("hsm audit flush failed", error=type(e).__name__)
