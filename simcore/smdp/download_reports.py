"""The two reports of every download as one statement each on PostgreSQL: GetBoundProfilePackage's
delivery and HandleNotification's installation result (GSMA SGP.22 v2.5 §3.1.3, §5.6.2, §5.6.4;
the states of simcore.smdp.download_orders).

What `StoreDownloadOrders.delivered` / `installed` / `install_failed` do in a transaction of six
to eight statements — the profile's row locked, the RSP session's step (upserted at `delivered`,
deleted at the end), the order's counters, the state change (version-guarded, by the profile
lifecycle's rules), its audit record and its outbox event, or, when nothing moves, the record of
what happened — is here one statement of data-modifying CTEs, run alone in autocommit
(db.DirectStatement): one round trip, no BEGIN or COMMIT, the prepared statement kept. It is
atomic as the transaction was; the row lock, the counters' upsert and the audit lane's head are
taken in the same order, and held until the statement commits.

The audit details are canonical JSON whose few values only the database knows at that moment
(the download count, the state the profile was in) are filled in by the statement: the record
is made in Python with a marker in each such place (`_Template`), exactly as the transaction
would have made it, and the statement puts the value's JSON text between the pieces — so the
two paths write the same records, byte for byte (tests/smdp/test_download_reports.py compares
them), and `simsmith audit verify` checks them the same way.

SQLite keeps the transaction (one writer at a time: fewer statements buy little there).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, Engine, LargeBinary, bindparam, text

from simcore import audit
from simcore.db import DirectStatement
from simcore.lifecycle import PROFILE_LIFECYCLE, ProfileState
from simcore.models import UtcDateTime, utcnow
from simcore.records import canonical_json, check_no_secrets
from simcore.smdp.es9plus import SESSION_COLUMNS
from simcore.telemetry import outbox_traceparent

P = ProfileState
_SUBJECT = PROFILE_LIFECYCLE.name  # "esim_profile": the audit subject type and topic prefix


def _marker(slot: str) -> str:
    return f"\x1fslot:{slot}\x1f"


@dataclass(frozen=True)
class _Template:
    """Canonical JSON of a record with some values left to the statement: `slots` (key → a SQL
    expression giving that value's JSON text), in key order as canonical JSON writes them."""

    name: str
    slots: tuple[tuple[str, str], ...] = ()

    @property
    def sql(self) -> str:
        parts = [f":{self.name}_0"]
        for i, (_, expression) in enumerate(sorted(self.slots), start=1):
            parts += [f"({expression})", f":{self.name}_{i}"]
        return " || ".join(parts)

    def params(self, record: Mapping[str, Any]) -> dict[str, str]:
        """The literal pieces of `record` around the slots (whose values in it are ignored)."""
        check_no_secrets(record)
        marked = dict(record)
        for key, _ in self.slots:
            marked[key] = _marker(key)
        rendered = canonical_json(marked)
        pieces: list[str] = []
        for key, _ in sorted(self.slots):
            quoted = canonical_json(_marker(key))
            before, found, rendered = rendered.partition(quoted)
            if not found or quoted in rendered:
                raise ValueError(f"{self.name}: the record's text holds the marker of {key}")
            pieces.append(before)
        pieces.append(rendered)
        return {f"{self.name}_{i}": piece for i, piece in enumerate(pieces)}


def _state_change_record(current: str, target: str, reason: str | None,
                         details: Mapping[str, Any]) -> dict[str, Any]:
    """What lifecycle.transition_row records for a move (its _record, with the details that
    download_orders._move passes)."""
    record: dict[str, Any] = {"from": current, "to": str(target)}
    if reason is not None:
        record["reason"] = reason
    record.update({**details, **({"reason": reason} if reason else {})})
    return record


def _plain_record(details: Mapping[str, Any]) -> dict[str, Any]:
    """What download_orders._record records (None values left out)."""
    return {k: v for k, v in details.items() if v is not None}


# --- the statements ---------------------------------------------------------------------------

_LOCK = "l AS (SELECT iccid, profile_state FROM sim WHERE iccid = :iccid FOR UPDATE)"
_SESSION_COLUMNS = ("transaction_id", *SESSION_COLUMNS)  # session_row's keys
_SESSION_UPSERT = (
    "s AS (INSERT INTO smdp_download_session (" + ", ".join(_SESSION_COLUMNS) + ") VALUES ("
    + ", ".join(f":s_{c}" for c in _SESSION_COLUMNS) + ") ON CONFLICT (transaction_id) DO "
    "UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in _SESSION_COLUMNS[1:]) + ")")
# download_orders._count_statement: a new matching ID for the profile restarts the counters.
_COUNT = (
    "c AS (INSERT INTO smdp_download_counter AS k (iccid, matching_id, downloads, cc_failures, "
    "last_transaction_id, updated_at) VALUES (:iccid, :matching_id, 1, 0, :s_transaction_id, "
    ":now) ON CONFLICT (iccid) DO UPDATE SET matching_id = excluded.matching_id, "
    "downloads = CASE WHEN k.matching_id = excluded.matching_id THEN k.downloads ELSE 0 END "
    "+ excluded.downloads, "
    "cc_failures = CASE WHEN k.matching_id = excluded.matching_id THEN k.cc_failures ELSE 0 END "
    "+ excluded.cc_failures, "
    "last_transaction_id = coalesce(excluded.last_transaction_id, k.last_transaction_id), "
    "expires_at = CASE WHEN k.matching_id = excluded.matching_id THEN k.expires_at END, "
    "updated_at = excluded.updated_at RETURNING k.downloads)")

_DELIVERED_MOVED = _Template("dm", (("download", "c.downloads::text"),))
_DELIVERED_AGAIN = _Template("dr", (("download", "c.downloads::text"),))
# released → downloaded (the EID bound to the profile unless it had one), else a re-download
# of a profile delivered before and never installed (or no profile row: recorded the same).
_DELIVERED = text(
    "WITH " + _LOCK + ", " + _SESSION_UPSERT + ", " + _COUNT + ", "
    "u AS (UPDATE sim SET profile_state = 'downloaded', version = sim.version + 1, "
    "updated_at = :now, eid = coalesce(sim.eid, :eid) FROM l WHERE sim.iccid = l.iccid "
    "AND l.profile_state = 'released' RETURNING sim.iccid), "
    "r AS (SELECT CASE WHEN u.iccid IS NULL THEN 'esim_profile.redownloaded' "
    "ELSE 'esim_profile.downloaded' END AS action, "
    f"CASE WHEN u.iccid IS NULL THEN {_DELIVERED_AGAIN.sql} ELSE {_DELIVERED_MOVED.sql} END "
    "AS details, CASE WHEN u.iccid IS NULL THEN 'esim_profile.redownloaded' "
    "ELSE 'esim_profile.state_changed' END AS topic FROM c LEFT JOIN u ON true), "
    + audit.pg_append_tail("r"))

_INSTALL_MOVED = _Template("im", (("from", "to_json(u.from_state)::text"),))
_INSTALL_RECORDED = _Template("ir", (("profile_state", "to_json(l.profile_state)::text"),))
_INSTALL_NO_STATE = _Template("in")


def _install_statement(target: str) -> Any:
    """The installation result's statement for `target` (installed, or error): the session
    ends; the profile moves to `target` from any state the lifecycle allows it from, else the
    report is recorded with the state the profile was in (download_orders._move_or_record)."""
    movable = sorted(s for s in PROFILE_LIFECYCLE.states
                     if s != target and target in PROFILE_LIFECYCLE.allowed(s))
    return text(
        "WITH " + _LOCK + ", "
        "d AS (DELETE FROM smdp_download_session WHERE transaction_id = :s_transaction_id), "
        f"u AS (UPDATE sim SET profile_state = '{target}', version = sim.version + 1, "
        "updated_at = :now FROM l WHERE sim.iccid = l.iccid AND l.profile_state IN ("
        + ", ".join(f"'{s}'" for s in movable) + ") RETURNING l.profile_state AS from_state), "
        f"r AS (SELECT CASE WHEN u.from_state IS NOT NULL THEN 'esim_profile.{target}' "
        "ELSE 'esim_profile.download_progress' END AS action, "
        f"CASE WHEN u.from_state IS NOT NULL THEN {_INSTALL_MOVED.sql} "
        f"WHEN l.profile_state IS NULL THEN {_INSTALL_NO_STATE.sql} "
        f"ELSE {_INSTALL_RECORDED.sql} END AS details, "
        "CASE WHEN u.from_state IS NOT NULL THEN 'esim_profile.state_changed' "
        "ELSE 'esim_profile.download_progress' END AS topic "
        "FROM (SELECT 1) AS one LEFT JOIN l ON true LEFT JOIN u ON true), "
        + audit.pg_append_tail("r"))


_TYPES: tuple[BindParameter[Any], ...] = (
    bindparam("now", type_=UtcDateTime()), bindparam("s_expires_at", type_=UtcDateTime()),
    *(bindparam(f"s_{c}", type_=LargeBinary()) for c in (
        "euicc_challenge", "server_challenge", "ci_key_id", "euicc_certificate",
        "smdp_signature2")))


class OneStatementReports:
    """`delivered` and the installation result, each one autocommitted statement on
    PostgreSQL. Called by StoreDownloadOrders (when it has the sessions' store and no
    progress hook); the records are those of its transaction path."""

    def __init__(self, engine: Engine, actor: str) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("one-statement reports are PostgreSQL's")
        self.actor = actor
        self._delivered = DirectStatement(engine, _DELIVERED.bindparams(*_TYPES), write=True,
                                          keep=True)
        self._install: dict[str, DirectStatement] = {
            str(target): DirectStatement(engine, _install_statement(target).bindparams(
                bindparam("now", type_=UtcDateTime())), write=True, keep=True)
            for target in (P.INSTALLED, P.ERROR)}

    def _audit_params(self, iccid: str) -> dict[str, Any]:
        return {"lane": audit.lane_of(iccid), "ts": audit.now_iso(), "actor": self.actor,
                "subject_type": _SUBJECT, "subject_id": iccid, "o_subject_type": _SUBJECT,
                "o_subject_id": iccid, "o_traceparent": outbox_traceparent(), "iccid": iccid,
                "now": utcnow()}

    def delivered(self, iccid: str, matching_id: str, eid: str, details: Mapping[str, Any],
                  session: Mapping[str, Any]) -> None:
        """The BPP delivered: `details` as download_orders records them (their `download` is
        the count after this one, filled in by the statement); `session` the RSP session's
        row at its next step."""
        params = self._audit_params(iccid)
        params.update(matching_id=matching_id, eid=eid,
                      **{f"s_{c}": session[c] for c in _SESSION_COLUMNS})
        params.update(_DELIVERED_MOVED.params(
            _state_change_record(P.RELEASED, P.DOWNLOADED, None, details)))
        params.update(_DELIVERED_AGAIN.params(_plain_record(details)))
        self._run(self._delivered, params)

    def install_result(self, iccid: str, target: str, reason: str | None,
                       details: Mapping[str, Any], transaction_id: str) -> None:
        """The installation result (`target` installed, or error with `reason`); the RSP
        session `transaction_id` ends."""
        params = self._audit_params(iccid)
        params["s_transaction_id"] = transaction_id
        # "from" and "profile_state" are the statement's: any state stands in for them here
        params.update(_INSTALL_MOVED.params(
            _state_change_record(P.RELEASED, target, reason, details)))
        params.update(_INSTALL_RECORDED.params(
            _plain_record({**details, "profile_state": "", "applied": False})))
        params.update(_INSTALL_NO_STATE.params(
            _plain_record({**details, "profile_state": None, "applied": False})))
        self._run(self._install[str(target)], params)

    @staticmethod
    def _run(statement: DirectStatement, params: dict[str, Any]) -> None:
        if statement.count(**params) != 1:  # the lane's head row is missing: nothing written
            raise RuntimeError("the audit record of a download report was not written")
