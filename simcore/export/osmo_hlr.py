"""Provisioning osmo-hlr over its CTRL interface (OsmoHLR user manual, "Control interface":
subscriber.create, subscriber.by-imsi-<IMSI>.aud3g / .msisdn / .cs-enabled / .ps-enabled).

Idempotent: creating a subscriber that exists is reported as "updated" and every other variable
is simply set again (a new subscriber has CS and PS enabled by osmo-hlr's defaults), so a run
that stopped half-way is run again. Commands of many subscribers
are pipelined (one write, replies matched by id). osmo-hlr keeps K/OPc in clear: only a target
marked insecure may feed it (simcore.export.keys).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from simcore.export.keys import ExportedSim
from simcore.export.osmo_ctrl import CtrlClient, Reply

EXISTS = "Subscriber already exists."


@dataclass(frozen=True, slots=True)
class SubscriberResult:
    iccid: str
    imsi: str
    status: str  # created | updated | failed
    error: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"iccid": self.iccid, "imsi": self.imsi, "status": self.status,
                "error": self.error}


def _base(s: ExportedSim) -> str:
    return f"subscriber.by-imsi-{s.imsi}"


def _first(s: ExportedSim, ind_bitlen: int) -> list[tuple[str, str, str | None]]:
    cmds: list[tuple[str, str, str | None]] = [
        ("SET", "subscriber.create", s.imsi),
        ("SET", f"{_base(s)}.aud3g", f"milenage,{s.k.hex()},opc,{s.opc.hex()},{ind_bitlen}"),
    ]
    if s.msisdn:
        cmds.append(("SET", f"{_base(s)}.msisdn", s.msisdn))
    return cmds


def _access(s: ExportedSim, cs: bool, ps: bool) -> list[tuple[str, str, str | None]]:
    return [("SET", f"{_base(s)}.cs-enabled", "1" if cs else "0"),
            ("SET", f"{_base(s)}.ps-enabled", "1" if ps else "0")]


def _failure(cmds: list[tuple[str, str, str | None]], replies: list[Reply]) -> str | None:
    for c, r in zip(cmds, replies, strict=True):
        if not r.ok:
            return f"{c[1].rsplit('.', 1)[-1]}: {r.value}"
    return None


def provision(client: CtrlClient, subscribers: Sequence[ExportedSim], *, ind_bitlen: int = 5,
              cs: bool = True, ps: bool = True) -> list[SubscriberResult]:
    """Create or update each subscriber with Milenage K/OPc, MSISDN and CS/PS access.

    Two pipelined rounds: create + aud3g (+ msisdn) for all; then cs-/ps-enabled for the
    subscribers that existed already (osmo-hlr creates new ones with both enabled, so they need
    the round only when CS or PS is to be disabled)."""
    plan = [_first(s, ind_bitlen) for s in subscribers]
    replies = client.pipeline([c for cmds in plan for c in cmds])
    status: list[tuple[str, str | None]] = []
    again: list[int] = []
    i = 0
    for n, cmds in enumerate(plan):
        mine = replies[i : i + len(cmds)]
        i += len(cmds)
        created = mine[0].ok
        if not created and mine[0].value != EXISTS:
            status.append(("failed", f"create: {mine[0].value}"))
            continue
        bad = _failure(cmds[1:], mine[1:])
        status.append(("failed", bad) if bad else ("created" if created else "updated", None))
        if not bad and (not created or not (cs and ps)):
            again.append(n)
    if again:
        cmds2 = [_access(subscribers[n], cs, ps) for n in again]
        replies2 = client.pipeline([c for cmds in cmds2 for c in cmds])
        for j, n in enumerate(again):
            bad = _failure(cmds2[j], replies2[2 * j : 2 * j + 2])
            if bad:
                status[n] = ("failed", bad)
    return [SubscriberResult(s.iccid, s.imsi, st, err)
            for s, (st, err) in zip(subscribers, status, strict=True)]
