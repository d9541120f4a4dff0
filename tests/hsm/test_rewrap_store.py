"""Migrating stored keys to the v2 blob format (simcore.keys.rewrap_keys, `simsmith hsm rewrap`)
on SQLite and PostgreSQL: v1 references stored before are converted page by page, keys and
vectors unchanged, a second run changes nothing, a reference changed meanwhile is left alone."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update
from typer.testing import CliRunner

from hsm_sim.binding import is_v2
from hsm_sim.errors import DevModeWarning, TamperedBlob
from hsm_sim.keyref import KeyRef, KeyType
from hsm_sim.soft import SoftHsm
from simcore import inventory, keys, ranges
from simcore.db import read_session, transaction
from simcore.identifiers import Iccid
from simcore.models import AuditEvent, Sim, SimCredential
from tools.hsm_cli import app

PASSPHRASE = "rewrap tests only"


def _hsm(directory: Path) -> SoftHsm:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DevModeWarning)
        return SoftHsm.init(directory, passphrase=PASSPHRASE, scrypt_n=2**10)


def _v1(hsm: SoftHsm, token: str) -> str:
    """The same key as a v1 (RFC 5649) reference, as simsmith stored them before v2."""
    ref = KeyRef.from_token(token)
    key = hsm._unwrap(ref, ref.key_type)
    blob = hsm._binder(ref.kek).wrap_v1(ref.key_type, ref.owner, key)
    return KeyRef(ref.backend, ref.key_type, ref.owner, ref.kek, blob).to_token()


def _seed_v1(engine: Engine, hsm: SoftHsm, count: int) -> list[str]:
    first = Iccid.from_body("898821100000000001").digits
    last = Iccid.from_body("898821100000009999").digits
    ranges.add_range(engine, "iccid", first, last, name="iccid-1", actor="t")
    ranges.add_range(engine, "imsi", "001010000000001", "001010000009999", name="imsi-1",
                     mnc_length=2, actor="t")
    inventory.generate_sims(engine, count, batch="b1", actor="t", kind="physical", state="blank")
    keys.generate_keys(engine, hsm, actor="t", batch="b1")
    with transaction(engine) as s:
        for sim in s.execute(select(Sim)).scalars():
            assert sim.ki_ref and sim.opc_ref and is_v2(KeyRef.from_token(sim.ki_ref).blob)
            sim.ki_ref, sim.opc_ref = _v1(hsm, sim.ki_ref), _v1(hsm, sim.opc_ref)
        for cred in s.execute(select(SimCredential)).scalars():
            cred.ref = _v1(hsm, cred.ref)
    return [s.iccid for s in inventory.list_sims(engine, batch="b1")]


def _tokens(engine: Engine) -> dict[tuple[str, str], str]:
    """Every stored reference by (ICCID, column or credential name)."""
    with read_session(engine) as s:
        sims = list(s.execute(select(Sim.iccid, Sim.ki_ref, Sim.opc_ref)).all())
        creds = list(s.execute(select(SimCredential.iccid, SimCredential.name,
                                      SimCredential.ref)).all())
    out = {(i, "ki"): k for i, k, _ in sims if k} | {(i, "opc"): o for i, _, o in sims if o}
    return out | {(i, n): r for i, n, r in creds}


def test_rewrap_keys_converts_every_stored_reference(engine: Engine, tmp_path: Path) -> None:
    hsm = _hsm(tmp_path / "hsm")
    iccids = _seed_v1(engine, hsm, 7)
    before = _tokens(engine)
    assert before and not any(is_v2(KeyRef.from_token(t).blob) for t in before.values())
    k = keys.load_keys(engine, iccids[3])
    rand = bytes(range(16))
    old = hsm.milenage_vectors(k.ki, k.opc, [64], rands=[rand])

    result = keys.rewrap_keys(engine, hsm, actor="t", page=3)
    after = _tokens(engine)
    assert result.references == len(before) == result.rewrapped == len(after)
    assert all(is_v2(KeyRef.from_token(t).blob) for t in after.values())
    assert before.keys() == after.keys()
    for slot, a in before.items():  # same refs, same keys
        ra, rb = KeyRef.from_token(a), KeyRef.from_token(after[slot])
        assert (ra.owner, ra.key_type) == (rb.owner, rb.key_type) and hsm.same_key(ra, rb)
    k2 = keys.load_keys(engine, iccids[3])
    assert hsm.milenage_vectors(k2.ki, k2.opc, [64], rands=[rand]) == old
    with read_session(engine) as s:
        events = list(s.execute(select(AuditEvent).where(AuditEvent.action == "keys.rewrap"))
                      .scalars())
    assert sum(json.loads(e.details)["rewrapped"] for e in events) == len(before)
    assert keys.rewrap_keys(engine, hsm, actor="t") == keys.RewrapResult(len(after), 0)


def test_rewrap_keys_refuses_a_tampered_reference_and_keeps_the_rest(
        engine: Engine, tmp_path: Path) -> None:
    hsm = _hsm(tmp_path / "hsm")
    iccids = _seed_v1(engine, hsm, 3)
    k0, k1 = keys.load_keys(engine, iccids[0]), keys.load_keys(engine, iccids[1])
    moved = KeyRef(k0.ki.backend, KeyType.KI, iccids[1], k0.ki.kek, k0.ki.blob)  # swapped SIM
    with transaction(engine) as s:
        s.execute(update(Sim).where(Sim.iccid == iccids[1]).values(ki_ref=moved.to_token()))
    with pytest.raises(TamperedBlob, match=iccids[1]):
        keys.rewrap_keys(engine, hsm, actor="t", page=1)
    # the page before the bad one was converted, the bad row and the rest are as they were
    assert is_v2(keys.load_keys(engine, iccids[0]).ki.blob)
    assert keys.load_keys(engine, iccids[1]).ki == moved
    assert not is_v2(keys.load_keys(engine, iccids[2]).ki.blob)
    assert k1.opc == keys.load_keys(engine, iccids[1]).opc


def test_hsm_rewrap_command(engine: Engine, tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    hsm = _hsm(home / "hsm")
    _seed_v1(engine, hsm, 2)
    monkeypatch.setenv("SIMSMITH_HOME", str(home))
    monkeypatch.setenv("SIMSMITH_HSM_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("SIMSMITH_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    r = CliRunner().invoke(app, ["rewrap", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["rewrapped"] == data["references"] > 0
    r = CliRunner().invoke(app, ["rewrap"])
    assert r.exit_code == 0 and f"rewrapped 0 of {data['references']}" in r.stdout
    assert PASSPHRASE not in r.output
