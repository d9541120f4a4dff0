"""End to end against a real osmo-hlr: provision over CTRL (idempotent, per-subscriber report),
then fetch vectors over GSUP SendAuthInfo and check each against the HSM's Milenage."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, select, update
from sqlmodel import col

from hsm_sim.soft import SoftHsm
from simcore.db import read_session, transaction
from simcore.errors import InvalidInput
from simcore.export import Selection, export_osmo_hlr
from simcore.export.gsup import GsupClient, GsupError
from simcore.export.osmo_ctrl import CtrlClient
from simcore.export.verify import check_vector
from simcore.models import AuditEvent, Sim


def _forget(host: str, port: int, imsis: list[str]) -> None:
    with CtrlClient(host, port) as c:
        c.pipeline([("SET", "subscriber.delete", i) for i in imsis])


def test_provision_then_vectors_match_the_hsm(engine: Engine, hsm: SoftHsm, stocked: list,  # type: ignore[type-arg]
                                              osmohlr: tuple[str, int, int]) -> None:
    host, ctrl_port, gsup_port = osmohlr
    _forget(host, ctrl_port, [c.imsi for c in stocked])
    with transaction(engine) as s:
        s.execute(update(Sim).where(col(Sim.iccid) == stocked[0].iccid).values(msisdn="4912345"))
    r = export_osmo_hlr(engine, hsm, target="hlr-test", host=host, port=ctrl_port, actor="t")
    assert (r.count, r.created, r.updated, r.failed) == (6, 6, 0, 0)
    again = export_osmo_hlr(engine, hsm, target="hlr-test", host=host, port=ctrl_port,
                            selection=Selection(iccids=[stocked[1].iccid]))
    assert [x.status for x in again.results] == ["updated"]
    with CtrlClient(host, ctrl_port) as c:
        info = c.get(f"subscriber.by-imsi-{stocked[0].imsi}.info")
        aud = c.get(f"subscriber.by-imsi-{stocked[0].imsi}.info-aud")
    assert "msisdn\t4912345" in info and "nam_ps\t1" in info
    assert f"aud3g.opc\t{stocked[0].opc.hex()}" in aud  # osmo-hlr holds it in clear
    with read_session(engine) as s:
        sims = {x.imsi: x for x in s.execute(select(Sim)).scalars()}
        events = [e for e in s.execute(select(AuditEvent)).scalars()
                  if e.action == "export.osmo_hlr"]
    with GsupClient(host, gsup_port, name="simsmith-test") as g:
        for c in stocked:
            tuples = g.send_auth_info(c.imsi, 2)
            assert len(tuples) == 2
            checks = [check_vector(hsm, sims[c.imsi], t) for t in tuples]
            assert all(x.ok for x in checks), checks
            assert checks[1].sqn > checks[0].sqn  # osmo-hlr advanced its SQN
        with pytest.raises(GsupError) as e:
            g.send_auth_info("001010999999999", 1)
        assert e.value.cause == 2
    assert len(events) == 2
    details = json.loads(events[0].details)
    assert details["insecure_clear"] is True and details["count"] == 6
    text = " ".join(e.details for e in events).lower()
    for c in stocked:
        assert c.ki.hex() not in text and c.opc.hex() not in text


def test_osmo_hlr_needs_a_clear_target(engine: Engine, hsm: SoftHsm, stocked: list,  # type: ignore[type-arg]
                                       osmohlr: tuple[str, int, int]) -> None:
    with pytest.raises(InvalidInput, match="scheme"):
        export_osmo_hlr(engine, hsm, target="hss1", host=osmohlr[0], port=osmohlr[1])
