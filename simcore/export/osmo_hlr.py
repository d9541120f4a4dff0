"""Provisioning osmo-hlr over its CTRL interface (OsmoHLR user manual, "Control interface":
subscriber.create, subscriber.by-imsi-<IMSI>.aud3g / .msisdn / .cs-enabled / .ps-enabled).

Idempotent: creating a subscriber that exists is reported as "updated" and every other variable
is set again (a new subscriber has CS and PS enabled by osmo-hlr's defaults), so a run that
stopped half-way is run again — except `aud3g` when osmo-hlr already holds the same K, OPc and
IND length: setting it would reset the subscriber's SQN to 0. A re-export keeps or raises the
network's SQN, never lowers it (simcore.export.hlr_sqn). Commands of many subscribers are
pipelined (one write, replies matched by id). osmo-hlr keeps K/OPc in clear: only a target
marked insecure may feed it (simcore.export.keys).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from simcore.errors import SimsmithError
from simcore.export.gsup import GsupClient
from simcore.export.hlr_sqn import Aud3g, floor_sqn, parse_info_aud, raise_sqn
from simcore.export.ipa import IpaClosed
from simcore.export.keys import ExportedSim
from simcore.export.osmo_ctrl import CtrlClient, Reply

EXISTS = "Subscriber already exists."


@dataclass(frozen=True, slots=True)
class SubscriberResult:
    iccid: str
    imsi: str
    status: str  # created | updated | failed
    error: str | None = None
    keys_set: bool = True  # False: osmo-hlr held these keys already, aud3g left alone
    sqn: int | None = None  # osmo-hlr's SQN for the subscriber after the export

    def as_dict(self) -> dict[str, str | int | bool | None]:
        return {"iccid": self.iccid, "imsi": self.imsi, "status": self.status,
                "error": self.error, "keys_set": self.keys_set, "sqn": self.sqn}


def _base(s: ExportedSim) -> str:
    return f"subscriber.by-imsi-{s.imsi}"


def _first(s: ExportedSim, ind_bitlen: int, keys: bool, cs: bool, ps: bool
           ) -> list[tuple[str, str, str | None]]:
    cmds: list[tuple[str, str, str | None]] = [("SET", "subscriber.create", s.imsi)]
    if not (cs and ps):
        # Barred right after the create, before the keys: osmo-hlr creates a subscriber with
        # CS and PS enabled, and one with keys and access could attach in between.
        cmds.extend(_access(s, cs, ps))
    if keys:
        cmds.append(("SET", f"{_base(s)}.aud3g",
                     f"milenage,{s.k.hex()},opc,{s.opc.hex()},{ind_bitlen}"))
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
              cs: bool = True, ps: bool = True,
              gsup: Callable[[], GsupClient] | None = None) -> list[SubscriberResult]:
    """Create or update each subscriber with Milenage K/OPc, MSISDN and CS/PS access, keeping
    (or raising) its SQN.

    Pipelined rounds: `info-aud` for all (what osmo-hlr holds); create (+ cs-/ps-enabled when
    CS or PS is to be barred: right after the create, before the keys, so a barred subscriber
    never holds keys with access allowed) + aud3g where the keys differ (+ msisdn); then
    cs-/ps-enabled for the subscribers that existed already and are to be allowed (osmo-hlr
    creates new ones with both enabled).
    Then, over GSUP (`gsup` opens the connection, only if needed), a resync for each subscriber
    whose SQN would otherwise be below what it was or below what simsmith issued
    (simcore.export.hlr_sqn); without `gsup` such a subscriber is reported failed."""
    infos = client.pipeline([("GET", f"{_base(s)}.info-aud", None) for s in subscribers])
    before: list[Aud3g | None] = [parse_info_aud(r.value) if r.ok else None for r in infos]
    keys = [b is None or not b.same_keys(s, ind_bitlen)
            for s, b in zip(subscribers, before, strict=True)]
    status: list[tuple[str, str | None] | None] = [None] * len(subscribers)
    if gsup is None:  # nothing could raise an SQN: leave alone whom a SET would set back
        for n, (s, b) in enumerate(zip(subscribers, before, strict=True)):
            floor = floor_sqn(s, b)
            if _sqn_after_set(b, keys[n]) < floor:
                status[n] = ("failed", f"sqn: setting its keys would take osmo-hlr's SQN from "
                             f"{floor} to 0, and no GSUP connection was given to raise it; "
                             "nothing changed")
    plan = [[] if status[n] else _first(s, ind_bitlen, keys[n], cs, ps)
            for n, s in enumerate(subscribers)]
    replies = client.pipeline([c for cmds in plan for c in cmds])
    again: list[int] = []
    i = 0
    for n, cmds in enumerate(plan):
        if not cmds:
            continue
        mine = replies[i : i + len(cmds)]
        i += len(cmds)
        created = mine[0].ok
        if not created and mine[0].value != EXISTS:
            status[n] = ("failed", f"create: {mine[0].value}")
            continue
        bad = _failure(cmds[1:], mine[1:])
        status[n] = ("failed", bad) if bad else ("created" if created else "updated", None)
        if not bad and not created and cs and ps:
            again.append(n)
    if again:
        cmds2 = [_access(subscribers[n], cs, ps) for n in again]
        replies2 = client.pipeline([c for cmds in cmds2 for c in cmds])
        for j, n in enumerate(again):
            bad = _failure(cmds2[j], replies2[2 * j : 2 * j + 2])
            if bad:
                status[n] = ("failed", bad)
    done = [st or ("failed", "not provisioned") for st in status]
    sqns = _keep_sqns(subscribers, before, keys, done, gsup)
    return [SubscriberResult(s.iccid, s.imsi, st, err, k, q)
            for s, (st, err), k, q in zip(subscribers, done, keys, sqns, strict=True)]


def _sqn_after_set(before: Aud3g | None, keys: bool) -> int:
    """osmo-hlr's SQN once the first round ran: SET aud3g replaces the row (SQN 0)."""
    return before.sqn if before is not None and not keys else 0


def _keep_sqns(subscribers: Sequence[ExportedSim], before: Sequence[Aud3g | None],
               keys: Sequence[bool], status: list[tuple[str, str | None]],
               gsup: Callable[[], GsupClient] | None) -> list[int | None]:
    """osmo-hlr's SQN of each subscriber after the export, raised by a resync where it is below
    its floor (a failed raise marks the subscriber failed)."""
    out: list[int | None] = []
    for n, s in enumerate(subscribers):
        if status[n][0] == "failed":
            out.append(None)
            continue
        b = before[n]
        now = _sqn_after_set(b, keys[n])
        floor = floor_sqn(s, b)
        if now >= floor or gsup is None:  # (without GSUP, provision() left such SIMs alone)
            out.append(now)
            continue
        try:
            out.append(raise_sqn(gsup(), s, floor))
        except (SimsmithError, OSError, IpaClosed, ValueError) as e:
            status[n] = ("failed", f"sqn: raising it to {floor} over GSUP failed: {e}")
            out.append(now)
    return out
