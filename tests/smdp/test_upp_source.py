"""A download through the ES9+ core with the real identity and UPP source (issue 16 item 3):
SK.DPauth / SK.DPpb in the HSM, the subscriber's package personalised from the compiled template
by the HSM, built into the BPP in memory. simsmith's LPA and virtual eUICC download it; the
enabled profile answers AUTHENTICATE with the Milenage vectors the HSM computes from the stored
Ki/OPc; and no clear key of the SIM is anywhere in the store, the logs or the workspace."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, select

from cards.personalise import verify_card
from cards.profile import AuthVector as CardVector
from esim.euicc.identity import dev_euicc
from esim.lpa.download import download
from esim.lpa.functions import Es10Functions
from hsm_sim.soft import SoftHsm
from simcore import keys
from simcore.config import Settings
from simcore.errors import InvalidInput
from simcore.euicc import EuiccLoopback, es10_session, virtual_euicc
from simcore.smdp.es9plus import Es9PlusCore, ReleasedOrder, StoreSessions
from simcore.smdp.identity import load_identity
from simcore.smdp.rsp_pki import sgp26_init
from simcore.smdp.upp_source import HsmUppSource, parse_profile_templates, upp_source
from tests.euicc.smdp_side import store_metadata
from tests.helpers.hsm import clear
from tests.smdp.test_es9plus_core import Orders
from tests.wiring.conftest import hsm, seed  # noqa: F401  (hsm: fixture)

ADDRESS = "smdp.lab.test"


class Es9:
    """The LPA's Es9Transport straight onto the core (the HTTP layer is es9http's)."""

    def __init__(self, core: Es9PlusCore) -> None:
        self.core = core

    def post(self, function: str, body: dict[str, Any]) -> dict[str, Any] | None:
        return self.core.handle(function, body).body


def _download(tmp_path: Path, engine: Engine, hsm: Any, iccid: str) -> Any:  # noqa: F811
    settings = Settings(home=tmp_path, smdp_address=ADDRESS)
    sgp26_init(settings, hsm, address=ADDRESS)
    identity = load_identity(settings, hsm)
    orders = Orders({"MATCH-1": ReleasedOrder("MATCH-1", iccid, store_metadata(iccid))})
    source = HsmUppSource(engine, hsm, verify=True)
    core = Es9PlusCore(identity, StoreSessions(engine), orders, source)
    card = virtual_euicc(dev_euicc(tmp_path / "pki" / "rsp", state=None))
    transport = EuiccLoopback(card)
    with es10_session(transport) as es10:
        functions = Es10Functions(es10.call)
        result = download(functions, Es9(core), f"LPA:1${ADDRESS}$MATCH-1")
        assert result.success and result.iccid == iccid
        functions.enable(iccid)
    assert ("installed", iccid, dev_euicc(tmp_path / "pki" / "rsp").eid) in orders.events
    return transport


@pytest.mark.slow
def test_downloaded_profile_authenticates_with_the_hsm_vectors(
        tmp_path: Path, engine: Engine, hsm: SoftHsm, caplog: pytest.LogCaptureFixture,  # noqa: F811
        capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    iccid = seed(engine, hsm, 1, batch="e1", kind="esim")[0]
    transport = _download(tmp_path, engine, hsm, iccid)
    k = keys.load_keys(engine, iccid)
    for sqn in (1 << 5, 2 << 5):
        v = hsm.milenage_vectors(k.ki, k.opc, [sqn], b"\x80\x00")[0]
        verify_card(transport, CardVector(v.rand, v.autn, v.xres, v.ck, v.ik))

    # no clear Ki, OPc, OTA key or code of the SIM anywhere: store, logs, workspace files
    secrets = {"Ki": clear(hsm, k.ki), "OPc": clear(hsm, k.opc)}
    secrets |= {name: clear(hsm, ref) for name, ref in k.credentials.items()
                if len(clear(hsm, ref)) >= 8}
    needles = [n for value in secrets.values()
               for n in (value, value.hex().encode(), value.hex().upper().encode())]
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        dump = repr([conn.execute(select(t)).all() for t in meta.sorted_tables]).encode()
    logs = ("\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
            + "".join(capfd.readouterr())).encode()
    files = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    for where, haystack in (("store", dump), ("logs", logs), ("files", files)):
        for needle in needles:
            assert needle not in haystack, f"a clear key of the SIM is in the {where}"


@pytest.mark.slow
def test_upp_source_refusals_and_settings(engine: Engine, hsm: SoftHsm) -> None:  # noqa: F811
    iccid = seed(engine, hsm, 1, batch="p1", kind="physical")[0]
    source = HsmUppSource(engine, hsm)
    with pytest.raises(InvalidInput) as e:
        source.package(iccid)  # a physical card has no profile to download
    assert e.value.field == "iccid"
    assert parse_profile_templates("gold=ts48, silver = usim-isim-milenage") == {
        "gold": "ts48", "silver": "usim-isim-milenage"}
    with pytest.raises(InvalidInput) as e:
        parse_profile_templates("gold=ts48,broken")
    assert e.value.field == "smdp_profile_templates" and e.value.position == "entry 2"
    with pytest.raises(InvalidInput) as e:
        upp_source(engine, hsm, Settings(smdp_template="no-such-template"))
    assert e.value.field == "template"
    esim = seed(engine, hsm, 1, batch="e2", kind="esim")[0]
    der = upp_source(engine=engine, hsm=lambda: hsm).package(esim)  # opened lazily
    assert der[:1] == b"\xa0" and "der" not in repr(source)


def test_downloads_carry_the_suci_key_registry(engine: Engine, hsm: SoftHsm) -> None:  # noqa: F811
    """Issue 20 item 4 on the SM-DP+ path: the UPP's DF.5GS/DF.SAIP EF.SUCI_Calc_Info hold the
    registry's active public keys (TS 31.102 §4.4.11.8)."""
    from cards.fs.ts_31_102_5gs import EF_SUCI_Calc_Info
    from esim.saip import ProfilePackage
    from simcore import suci_keys

    key = suci_keys.generate_key(engine, hsm, 3, "B", actor="t")
    iccid = seed(engine, hsm, 1, batch="e1", kind="esim")[0]
    package = ProfilePackage.from_der(HsmUppSource(engine, hsm).package(iccid))
    for kind, file in (("df-5gs", "ef-suci-calc-info"), ("df-saip", "ef-suci-calc-info-usim")):
        entries = EF_SUCI_Calc_Info.decode(package.one(kind).file_content(file))
        assert [(e["scheme"], e["key_id"]) for e in entries] == [(2, 3), (0, None)]
        assert entries[0]["public_key"] == key.public_key.hex().upper()


def test_the_upp_read_keeps_the_connections_prepared_statements(
        pg_engine: Engine, hsm: SoftHsm) -> None:  # noqa: F811
    """On PostgreSQL the UPP read runs in autocommit, on the connection the ES9+ steps' own
    statements keep (db.KeptConnections): psycopg drops every prepared statement of a
    connection at a ROLLBACK, and the pool's rollback after the read made PostgreSQL parse and
    plan again the ES9+ statements that had run on that connection."""
    from sqlalchemy import create_engine, func, literal, table

    from simcore import db
    from tests.conftest import reset_pg

    reset_pg(pg_engine)
    esim = seed(pg_engine, hsm, 1, batch="pp", kind="esim")[0]
    one = create_engine(pg_engine.url, pool_size=1, max_overflow=0)  # always the same connection
    try:
        probe = db.DirectStatement(one, select(literal(1)), keep=True)
        prepared = db.DirectStatement(
            one, select(func.count()).select_from(table("pg_prepared_statements")), keep=True)
        backend = db.DirectStatement(one, select(func.pg_backend_pid()), keep=True)
        pid = backend.rows()
        for _ in range(8):  # psycopg prepares a statement from its sixth run on
            probe.rows()
        assert prepared.rows()[0][0] >= 1
        HsmUppSource(one, hsm).package(esim)
        assert prepared.rows()[0][0] >= 1
        assert backend.rows() == pid  # the same connection all along
    finally:
        one.dispose()
