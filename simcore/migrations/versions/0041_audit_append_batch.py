"""Audit: `audit_append_batch`, a PostgreSQL function that appends a transaction's deferred
audit records and outbox events in one call (simcore.audit.deferred) — one round trip instead
of one statement each.

Each audit record is chained on its lane exactly as simcore.audit's one-statement append does
(the same encoding of event_hash, sha256() in SQL; `audit verify` cannot tell them apart); each
outbox event is inserted where it stands in the arrays, so the outbox keeps the order the
records were given in. The caller sorts them by lane (ascending), so the lane heads are locked
in one order. Nothing on SQLite (it has one writer; its appends hash in Python).

Revision ID: 0041
Revises: 0040
Create Date: 2026-12-08 00:00:00
"""
from __future__ import annotations

from alembic import op

revision = '0041'
down_revision = '0040'
branch_labels = None
depends_on = None


def _field(expr: str) -> str:
    return f"length({expr})::text || ':' || {expr} || ';'"


# event_hash's encoding (simcore.audit), frozen here: lane, lane_seq, ts, actor, action,
# subject type, subject id, details, previous hash; right-hand sides of SET see the old row.
_HASH = " || ".join(_field(e) for e in (
    "id::text", "(seq + 1)::text", "p_ts[i]", "p_actor[i]", "p_action[i]",
    "p_subject_type[i]", "p_subject_id[i]", "p_details[i]", "hash"))

_FUNCTION = f"""
CREATE FUNCTION audit_append_batch(
    p_lane integer[], p_ts text[], p_actor text[], p_action text[], p_subject_type text[],
    p_subject_id text[], p_details text[], p_o_created timestamptz[], p_o_topic text[],
    p_o_subject_type text[], p_o_subject_id text[], p_o_payload text[],
    p_o_traceparent text[]) RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    i integer;
    h record;
    n integer := 0;
BEGIN
    -- Entry i: an audit record when p_lane[i] is not null, an outbox event when p_o_topic[i]
    -- is not null (both: the record's event, written with it).
    FOR i IN 1 .. coalesce(array_length(p_o_topic, 1), 0) LOOP
        IF p_lane[i] IS NOT NULL THEN
            UPDATE audit_head SET seq = seq + 1, prev_hash = hash,
                hash = encode(sha256(convert_to({_HASH}, 'UTF8')), 'hex')
            WHERE id = p_lane[i] RETURNING id, seq, hash, prev_hash INTO STRICT h;
            INSERT INTO audit_event (lane, lane_seq, ts, actor, action, subject_type,
                                     subject_id, details, prev_hash, hash)
            VALUES (h.id, h.seq, p_ts[i], p_actor[i], p_action[i], p_subject_type[i],
                    p_subject_id[i], p_details[i], h.prev_hash, h.hash);
            n := n + 1;
        END IF;
        IF p_o_topic[i] IS NOT NULL THEN
            INSERT INTO outbox_event (created_at, topic, subject_type, subject_id, payload,
                                      attempts, traceparent)
            VALUES (coalesce(p_o_created[i], now()), p_o_topic[i], p_o_subject_type[i],
                    p_o_subject_id[i], p_o_payload[i], 0, p_o_traceparent[i]);
        END IF;
    END LOOP;
    RETURN n;
END
$fn$
"""

_SIGNATURE = ("audit_append_batch(integer[], text[], text[], text[], text[], text[], text[], "
              "timestamptz[], text[], text[], text[], text[], text[])")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.get_bind().exec_driver_sql(_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.get_bind().exec_driver_sql(f"DROP FUNCTION {_SIGNATURE}")
