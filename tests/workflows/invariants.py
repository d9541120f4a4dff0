"""The invariants every chaos test ends with (issue 18 item 5): no SIM both in stock and in
service, no HLR entry without an active SIM, no order left open, no run left unfinished."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine, select

from simcore.db import read_session
from simcore.models import MsisdnEntry, Sim
from simcore.models_api import EsimOrder
from simcore.workflows.models import Workflow

IN_SERVICE = ("active", "suspended")


def check(engine: Engine, hlr_imsis: Iterable[str]) -> None:
    with read_session(engine) as s:
        sims = {x.iccid: x for x in s.execute(select(Sim)).scalars()}
        numbers = list(s.execute(select(MsisdnEntry)).scalars())
        orders = list(s.execute(select(EsimOrder)).scalars())
        runs = list(s.execute(select(Workflow)).scalars())
    by_imsi = {x.imsi: x for x in sims.values() if x.imsi}
    for sim in sims.values():
        if sim.state == "in_stock":  # in stock means nobody's: no subscriber, number, order
            assert sim.subscriber_ref is None and sim.msisdn is None, sim.iccid
            assert sim.kind != "esim" or sim.profile_state == "available", \
                f"{sim.iccid} in stock with its profile {sim.profile_state} at the SM-DP+"
    for imsi in hlr_imsis:
        sim = by_imsi.get(imsi)
        assert sim is not None and sim.state in IN_SERVICE, \
            f"HLR entry {imsi} without an active SIM ({sim.state if sim else 'none'})"
    for n in numbers:
        if n.state == "assigned":
            assert n.iccid in sims and sims[n.iccid].msisdn == n.msisdn, n.msisdn
    for o in orders:
        if o.status == "active":
            assert sims[o.iccid].state in IN_SERVICE, f"order {o.id} open for {o.iccid}"
    for r in runs:
        assert r.status in ("succeeded", "failed", "cancelled"), f"run {r.id} is {r.status}"
