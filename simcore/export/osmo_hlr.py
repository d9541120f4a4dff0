"""Provisioning osmo-hlr over its CTRL interface (OsmoHLR user manual, "Control interface":
subscriber.create, subscriber.by-imsi-<IMSI>.aud3g / .msisdn / .cs-enabled / .ps-enabled).

Idempotent: creating a subscriber that exists is reported as "updated" and every other variable
is simply set again, so a run that stopped half-way is run again. Commands of many subscribers
are pipelined (one write, replies matched by id). osmo-hlr keeps K/OPc in clear: only a target
marked insecure may feed it (simcore.export.keys).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from simcore.export.keys import ExportedSim
from simcore.export.osmo_ctrl import CtrlClient

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


def _commands(s: ExportedSim, ind_bitlen: int, cs: bool, ps: bool
              ) -> list[tuple[str, str, str | None]]:
    base = f"subscriber.by-imsi-{s.imsi}"
    cmds: list[tuple[str, str, str | None]] = [
        ("SET", "subscriber.create", s.imsi),
        ("SET", f"{base}.aud3g", f"milenage,{s.k.hex()},opc,{s.opc.hex()},{ind_bitlen}"),
        ("SET", f"{base}.cs-enabled", "1" if cs else "0"),
        ("SET", f"{base}.ps-enabled", "1" if ps else "0"),
    ]
    if s.msisdn:
        cmds.append(("SET", f"{base}.msisdn", s.msisdn))
    return cmds


def provision(client: CtrlClient, subscribers: Sequence[ExportedSim], *, ind_bitlen: int = 5,
              cs: bool = True, ps: bool = True) -> list[SubscriberResult]:
    """Create or update each subscriber with Milenage K/OPc, MSISDN and CS/PS access."""
    plan = [_commands(s, ind_bitlen, cs, ps) for s in subscribers]
    replies = client.pipeline([c for cmds in plan for c in cmds])
    out, i = [], 0
    for s, cmds in zip(subscribers, plan, strict=True):
        mine = replies[i : i + len(cmds)]
        i += len(cmds)
        created = mine[0].ok
        if not created and mine[0].value != EXISTS:
            out.append(SubscriberResult(s.iccid, s.imsi, "failed", f"create: {mine[0].value}"))
            continue
        bad = next(((c, r) for c, r in zip(cmds[1:], mine[1:], strict=True) if not r.ok), None)
        if bad is not None:
            var = bad[0][1].rsplit(".", 1)[-1]
            out.append(SubscriberResult(s.iccid, s.imsi, "failed", f"{var}: {bad[1].value}"))
            continue
        out.append(SubscriberResult(s.iccid, s.imsi, "created" if created else "updated"))
    return out
