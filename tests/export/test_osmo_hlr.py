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
from simcore.export.hlr_sqn import Aud3g, parse_info_aud
from simcore.export.osmo_ctrl import CtrlClient
from simcore.export.verify import check_vector
from simcore.models import AuditEvent, Sim
from simcore.sqn_store import reserve_sqns


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


def _held(host: str, port: int, imsi: str) -> Aud3g:
    with CtrlClient(host, port) as c:
        aud = parse_info_aud(c.get(f"subscriber.by-imsi-{imsi}.info-aud"))
    assert aud is not None
    return aud


def test_reexport_keeps_or_raises_the_networks_sqn(engine: Engine, hsm: SoftHsm,
                                                  stocked: list,  # type: ignore[type-arg]
                                                  osmohlr: tuple[str, int, int]) -> None:
    """Issue 13 item 6: exporting a batch again must not set osmo-hlr's SQN back to 0 (every
    card would then reject the network's vectors until a resync). Same keys: aud3g is left
    alone, the SQN stays. Other keys in the HLR: ours are set and the SQN is raised back above
    what it was. A SIM simsmith issued vectors for starts above them."""
    host, ctrl_port, gsup_port = osmohlr
    imsis = [c.imsi for c in stocked]
    _forget(host, ctrl_port, imsis)
    issued = reserve_sqns(engine, stocked[5].iccid, 3)
    r = export_osmo_hlr(engine, hsm, target="hlr-test", host=host, port=ctrl_port,
                        gsup_port=gsup_port)
    assert (r.created, r.failed) == (6, 0)
    with read_session(engine) as s:
        sims = {x.imsi: x for x in s.execute(select(Sim)).scalars()}
    with GsupClient(host, gsup_port, name="simsmith-test") as g:
        t = g.send_auth_info(stocked[5].imsi, 1)[0]
        first = check_vector(hsm, sims[stocked[5].imsi], t)
        assert first.ok and first.sqn >> 5 > max(issued) >> 5  # above what simsmith issued
        for imsi in imsis[:3]:  # the network uses vectors: its SQN moves on
            g.send_auth_info(imsi, 3)
    before = {i: _held(host, ctrl_port, i).sqn for i in imsis}
    assert all(before[i] > 0 for i in imsis[:3])

    again = export_osmo_hlr(engine, hsm, target="hlr-test", host=host, port=ctrl_port,
                            gsup_port=gsup_port, selection=Selection(batch="B-TEST-1"))
    assert (again.updated, again.failed) == (6, 0)
    assert [x.keys_set for x in again.results] == [False] * 6
    assert {i: _held(host, ctrl_port, i).sqn for i in imsis} == before  # kept, not 0
    assert [x.sqn for x in again.results] == [before[i] for i in imsis]

    # Someone put other keys into the HLR and the network used them for a while.
    with CtrlClient(host, ctrl_port) as c:
        c.set(f"subscriber.by-imsi-{imsis[0]}.aud3g", f"milenage,{'00' * 16},opc,{'11' * 16},5")
    with GsupClient(host, gsup_port, name="simsmith-test") as g:
        g.send_auth_info(imsis[0], 4)
    other = _held(host, ctrl_port, imsis[0]).sqn
    assert other > 0
    third = export_osmo_hlr(engine, hsm, target="hlr-test", host=host, port=ctrl_port,
                            gsup_port=gsup_port, selection=Selection(iccids=[stocked[0].iccid]))
    (res,) = third.results
    assert res.status == "updated" and res.keys_set and res.error is None
    held = _held(host, ctrl_port, imsis[0])
    assert held.k == stocked[0].ki and held.opc == stocked[0].opc  # ours again
    assert held.sqn >= other and res.sqn == held.sqn  # raised back, never lowered
    with GsupClient(host, gsup_port, name="simsmith-test") as g:
        nxt = check_vector(hsm, sims[imsis[0]], g.send_auth_info(imsis[0], 1)[0])
    assert nxt.ok and nxt.sqn > other


def test_reexport_without_gsup_refuses_to_lower_the_sqn(
        engine: Engine, hsm: SoftHsm, stocked: list,  # type: ignore[type-arg]
        osmohlr: tuple[str, int, int]) -> None:
    """With no GSUP connection to raise it, a subscriber whose SQN would fall is reported failed
    (osmo-hlr keeps its old keys and SQN), never silently reset."""
    host, ctrl_port, gsup_port = osmohlr
    imsi = stocked[1].imsi
    _forget(host, ctrl_port, [imsi])
    with CtrlClient(host, ctrl_port) as c:
        c.pipeline([("SET", "subscriber.create", imsi),
                    ("SET", f"subscriber.by-imsi-{imsi}.aud3g",
                     f"milenage,{'22' * 16},opc,{'33' * 16},5")])
    with GsupClient(host, gsup_port, name="simsmith-test") as g:
        g.send_auth_info(imsi, 2)
    old = _held(host, ctrl_port, imsi).sqn
    r = export_osmo_hlr(engine, hsm, target="hlr-test", host=host, port=ctrl_port,
                        gsup_port=None, selection=Selection(iccids=[stocked[1].iccid]))
    (res,) = r.results
    assert res.status == "failed" and "sqn" in (res.error or "")
    assert stocked[1].ki.hex() not in (res.error or "")
    held = _held(host, ctrl_port, imsi)  # its keys and SQN untouched
    assert held.sqn == old and held.k == bytes.fromhex("22" * 16)
