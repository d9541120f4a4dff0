"""The embedded HLR (simcore.ports.embedded_hlr): the HLR port over simsmith's own subscriber
register, idempotent like osmo-hlr's, keeping K/OPc only as HSM references; selected by
SIMSMITH_HLR (default: embedded without SIMSMITH_HLR_HOST), refused in production mode unless
allowed; every workflow against it, ending with the chaos tests' invariants. SQLite and
PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlmodel import col

from api.settings import ApiSettings
from hsm_sim.soft import SoftHsm
from simcore.config import Settings, hlr_choice
from simcore.db import read_session
from simcore.errors import InvalidInput, NotFound
from simcore.export.keys import export_keys, key_form
from simcore.inventory import get_sim
from simcore.ports.embedded_hlr import EmbeddedHlr
from simcore.ports.hlr import HlrPort, HlrRefused, HlrSubscriber
from simcore.ports.hlr_models import HlrEntry
from simcore.smdp.in_process import InProcessSmdp
from simcore.workflows import engine as wf
from simcore.workflows.runtime import LazyHlr, NoHlr, WorkflowSettings, build_deps
from simcore.workflows.service import (
    get_workflow,
    start_activation,
    start_resume,
    start_suspend,
    start_swap,
    start_termination,
)
from simcore.workflows.steps import Deps
from tests.workflows import invariants
from tests.workflows.conftest import FAST


def _sub(imsi: str = "001010000000001", msisdn: str | None = "447700900001",
         allowed: bool = True) -> HlrSubscriber:
    return HlrSubscriber("8988211000000000011", imsi, msisdn, "kr1.ref-k", "kr1.ref-opc",
                         allowed)


def _rows(engine: Engine) -> list[HlrEntry]:
    with read_session(engine) as s:
        return list(s.execute(select(HlrEntry).order_by(col(HlrEntry.imsi))).scalars())


def test_the_register_is_idempotent_like_osmo_hlr(stocked: Engine) -> None:
    hlr = EmbeddedHlr(stocked)
    assert isinstance(hlr, HlrPort)
    hlr.provision(_sub())
    hlr.provision(_sub())  # again: the same one subscriber
    [row] = _rows(stocked)
    assert (row.imsi, row.msisdn, row.cs_allowed, row.ps_allowed) == (
        "001010000000001", "447700900001", True, True)
    hlr.set_access("001010000000001", allowed=False)
    hlr.set_access("001010000000001", allowed=False)  # sets, never toggles
    assert hlr.lookup("447700900001").access == "barred"
    hlr.provision(_sub(msisdn=None))  # an update without a number takes the old one away
    assert hlr.lookup("001010000000001").msisdn is None
    assert hlr.lookup("001010000000001").access == "allowed"  # provision sets access as asked
    hlr.remove("001010000000001")
    hlr.remove("001010000000001")  # one the HLR does not hold is fine
    assert _rows(stocked) == []


def test_refusals_name_what_is_wrong(stocked: Engine) -> None:
    hlr = EmbeddedHlr(stocked)
    hlr.provision(_sub())
    with pytest.raises(HlrRefused, match="447700900001 is subscriber 001010000000001"):
        hlr.provision(_sub(imsi="001010000000002"))  # one number, one subscriber
    hlr.provision(_sub(imsi="001010000000002", msisdn=None))
    with pytest.raises(HlrRefused, match="001010000000001"):
        hlr.set_msisdn("001010000000002", "447700900001")
    for call in (lambda: hlr.set_msisdn("001010000000009", None),
                 lambda: hlr.set_access("001010000000009", allowed=True)):
        with pytest.raises(HlrRefused, match="no such subscriber"):
            call()
    with pytest.raises(NotFound):
        hlr.lookup("001010000000009")
    with pytest.raises(InvalidInput, match="subscriber"):
        hlr.lookup("12ab")


def test_provisioned_barred_is_never_allowed(stocked: Engine) -> None:
    hlr = EmbeddedHlr(stocked)
    hlr.provision(_sub(allowed=False))
    [row] = _rows(stocked)
    assert (row.cs_allowed, row.ps_allowed) == (False, False)


def test_keys_are_only_hsm_references(deps: Deps, stocked: Engine, hsm: SoftHsm) -> None:
    deps.hlr = EmbeddedHlr(stocked)
    data = _done(deps, start_activation(stocked, {"subscriber_ref": "keys"}, actor="t"))
    sim = get_sim(stocked, data["iccid"])
    [row] = _rows(stocked)
    assert (row.ki_ref, row.opc_ref) == (sim.ki_ref, sim.opc_ref)
    [clear] = export_keys(hsm, [sim], key_form(hsm, "hlr-test", "clear"))
    stored = " ".join(str(v) for v in row.model_dump().values()).lower()
    assert clear.k.hex() not in stored and clear.opc.hex() not in stored
    view = deps.hlr.lookup(data["imsi"])  # type: ignore[attr-defined]
    assert sim.ki_ref not in str(view.as_dict()) and clear.k.hex() not in str(view.as_dict())


def _done(deps: Deps, wid: str) -> dict[str, Any]:
    w = wf.Worker(deps.engine, deps, policy=FAST)
    for _ in range(30):
        w.run_once()
    v = get_workflow(deps.engine, wid)
    assert v.status == wf.SUCCEEDED, (v.error, [(s.name, s.last_error) for s in v.steps])
    return v.data


def test_every_workflow_against_the_embedded_hlr(stocked: Engine, hsm: SoftHsm) -> None:
    hlr = EmbeddedHlr(stocked)
    deps = Deps(stocked, hlr, InProcessSmdp(stocked, "smdp.simsmith.test"), hsm)
    a = _done(deps, start_activation(stocked, {"subscriber_ref": "r1"}, actor="t"))
    e = _done(deps, start_activation(stocked, {"subscriber_ref": "r2", "kind": "esim"},
                                     actor="t"))
    assert hlr.lookup(a["msisdn"]).imsi == a["imsi"] and hlr.exists(e["imsi"])
    _done(deps, start_suspend(stocked, a["iccid"], actor="t", reason="unpaid"))
    assert hlr.lookup(a["imsi"]).access == "barred"
    _done(deps, start_resume(stocked, a["iccid"], actor="t"))
    assert hlr.lookup(a["imsi"]).access == "allowed"
    _done(deps, start_suspend(stocked, a["iccid"], actor="t", reason="unpaid"))
    sw = _done(deps, start_swap(stocked, a["iccid"], actor="t"))
    assert not hlr.exists(a["imsi"])
    moved = hlr.lookup(a["msisdn"])
    assert (moved.imsi, moved.access) == (sw["new_imsi"], "barred")
    _done(deps, start_termination(stocked, e["iccid"], actor="t", reason="gone"))
    assert not hlr.exists(e["imsi"])
    invariants.check(stocked, [r.imsi for r in _rows(stocked)])


def test_the_setting_selects_the_hlr(stocked: Engine, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SIMSMITH_HLR", "SIMSMITH_HLR_HOST", "SIMSMITH_MODE",
                 "SIMSMITH_HLR_ALLOW_EMBEDDED", "SIMSMITH_HSM_PASSPHRASE", "SIMSMITH_HSM_BACKEND",
                 "SIMSMITH_SMDP_ALLOW_LAB_ADDRESS", "SIMSMITH_ES2PLUS_ALLOW_PLAIN_HTTP"):
        monkeypatch.delenv(name, raising=False)
    assert hlr_choice(Settings()) == "embedded"
    assert hlr_choice(Settings(hlr_host="127.0.0.2")) == "osmo-hlr"
    assert hlr_choice(Settings(hlr="embedded", hlr_host="127.0.0.2")) == "embedded"
    with pytest.raises(ValueError, match="SIMSMITH_HLR_HOST"):
        hlr_choice(Settings(hlr="osmo-hlr"))
    # Production: never the embedded HLR by default (it reaches no network) — no HLR at all;
    # asked for by name without the allowance, refused.
    assert hlr_choice(Settings(mode="production")) == "none"
    with pytest.raises(ValueError, match="SIMSMITH_HLR_ALLOW_EMBEDDED"):
        hlr_choice(Settings(mode="production", hlr="embedded"))
    assert hlr_choice(Settings(mode="production", hlr_allow_embedded=True)) == "embedded"
    assert isinstance(build_deps(stocked, WorkflowSettings(), smdp=None, hsm=None).hlr,
                      EmbeddedHlr)
    monkeypatch.setenv("SIMSMITH_HLR_HOST", "127.0.0.2")
    assert isinstance(build_deps(stocked, WorkflowSettings(), smdp=None, hsm=None).hlr,
                      LazyHlr)
    monkeypatch.delenv("SIMSMITH_HLR_HOST")
    monkeypatch.setenv("SIMSMITH_MODE", "production")
    deps = build_deps(stocked, WorkflowSettings(), smdp=None, hsm=None)
    assert isinstance(deps.hlr, NoHlr)
    with pytest.raises(HlrRefused, match="SIMSMITH_HLR_HOST") as refused:
        deps.hlr.provision(_sub())
    assert refused.value.maybe_executed is False  # nothing reached a network: nothing to undo
    ApiSettings(home=tmp_path, smdp_address="smdp.example.com")  # type: ignore[call-arg]
    monkeypatch.setenv("SIMSMITH_HLR", "embedded")
    with pytest.raises(ValueError, match="SIMSMITH_HLR_ALLOW_EMBEDDED"):
        build_deps(stocked, WorkflowSettings(), smdp=None, hsm=None)
    # `simsmith serve` checks the whole tree at start: the same refusal, one clear line.
    with pytest.raises(ValueError, match="embedded HLR reaches no network"):
        ApiSettings(home=tmp_path, smdp_address="smdp.example.com")  # type: ignore[call-arg]
    monkeypatch.setenv("SIMSMITH_HLR_ALLOW_EMBEDDED", "true")
    assert isinstance(build_deps(stocked, WorkflowSettings(), smdp=None, hsm=None).hlr,
                      EmbeddedHlr)
