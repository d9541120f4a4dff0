"""The HSM's audit records reach simcore's audit log in the shipped app (docs/hsm.md "Audit"):
key.patch (esim build), key.reveal (access codes) and key.export (export file) appear in
`simsmith audit list`, through the CLI and through the API app factory's own HSM. Hot-path
records are aggregated per subject and flush (simcore.hsm_audit)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from api.main import create_app
from api.settings import ApiSettings
from simcore import apikeys, audit, inventory
from simcore.hsm_audit import AuditLogSink
from tools.cli import app

runner = CliRunner()
PASSPHRASE = "hsm audit tests only"


def ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def workspace(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The CLI on this test's store with a dev HSM and two eSIMs with keys; their ICCIDs."""
    monkeypatch.setenv("SIMSMITH_HOME", str(tmp_path))
    monkeypatch.setenv("SIMSMITH_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("SIMSMITH_HSM_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("SIMSMITH_HSM_BACKEND", "soft")
    ok("hsm", "init", "--dev-passphrase", PASSPHRASE)
    ok("range", "add", "iccid", "8988211000000000011", "8988211000000099997", "--name", "i")
    ok("range", "add", "imsi", "001010001000000", "001010001999999", "--name", "m",
       "--mnc-length", "2")
    ok("inventory", "generate", "-n", "2", "--batch", "e1", "--kind", "esim", "--with-keys")
    return [s.iccid for s in inventory.list_sims(engine, batch="e1")]


def actions(subject: str) -> list[dict[str, object]]:
    rows = json.loads(ok("audit", "list", "--subject", subject, "--limit", "1000", "--json"))
    return [r for r in rows if str(r["subject"]).startswith("hsm:")]


@pytest.mark.slow
@pytest.mark.storage
def test_cli_key_patch_reveal_and_export_in_audit_list(workspace: list[str],
                                                      tmp_path: Path) -> None:
    iccid = workspace[0]
    generated = actions(iccid)
    assert {r["action"] for r in generated} == {"key.generate"}
    # one aggregated record per subject and key type, however many keys of it were made
    assert all(r["actor"] == "cli" for r in generated)

    ok("hsm", "kek", "add", "lab", "--purpose", "export", "--insecure-clear")
    ok("esim", "build", "--template", "usim-isim-milenage", "--iccid", iccid,
       "-o", str(tmp_path / "p.der"), "--target", "lab", "--clear")
    ok("inventory", "access-codes", iccid, "--reason", "ticket 1")
    ok("export", "file", "--format", "csv", "--target", "lab", "-o", str(tmp_path / "s.csv"),
       "--iccid", iccid)
    seen = {r["action"]: r for r in actions(iccid)}
    assert {"key.patch", "key.reveal", "key.export"} <= set(seen)
    assert seen["key.export"]["details"]["target"] == "lab"  # type: ignore[index]
    # no key in any record: every detail is a name, type, count or flag
    text = json.dumps([r["details"] for r in actions(iccid)])
    assert PASSPHRASE not in text
    assert ok("audit", "verify").startswith("audit log OK")


@pytest.mark.slow
@pytest.mark.storage
def test_api_app_factory_hsm_reports_to_the_audit_log(workspace: list[str], engine: Engine,
                                                      tmp_path: Path) -> None:
    iccid = workspace[1]
    _, token = apikeys.create(engine, "care", ["care:access-codes"], actor="t")
    settings = ApiSettings(home=tmp_path, webhooks_enabled=False, api_key_cache_seconds=0)
    with TestClient(create_app(settings, engine=engine)) as client:  # the app opens its HSM
        r = client.get(f"/v1/sims/{iccid}/access-codes", params={"reason": "ticket 2"},
                       headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
    reveals = [e for e in audit.query(engine, subject_id=iccid, action="key.reveal")]
    assert [(e.actor, e.subject_type) for e in reveals] == [("api", "hsm")] * 2  # PIN1, PUK1
    assert sorted(json.loads(e.details)["key_type"] for e in reveals) == ["PIN", "PUK"]


@pytest.mark.storage
def test_sink_aggregates_hot_path_records_and_keeps_custody_ones(engine: Engine) -> None:
    sink = AuditLogSink(engine, "t", interval=3600)
    for _ in range(500):
        sink.record("auth.milenage", "8988211000000000011", {"count": 2})
        sink.record("key.patch", "8988211000000000011", {"key_types": ["ki", "opc"]})
    sink.record("key.reveal", "8988211000000000011", {"key_type": "pin1"})
    sink.record("key.reveal", "8988211000000000011", {"key_type": "pin1"})
    assert sink.flush() == 4
    sink.close()
    evs = {(e.action, e.seq): json.loads(e.details)
           for e in audit.query(engine, subject_id="8988211000000000011")}
    by_action: dict[str, list[dict[str, object]]] = {}
    for (action, _), details in sorted(evs.items(), key=lambda kv: kv[0][1]):
        by_action.setdefault(action, []).append(details)
    assert by_action["auth.milenage"] == [{"count": 1000, "calls": 500}]
    assert by_action["key.patch"] == [{"key_types": ["ki", "opc"], "calls": 500}]
    assert by_action["key.reveal"] == [{"key_type": "pin1"}, {"key_type": "pin1"}]


@pytest.mark.storage
def test_sink_keeps_records_when_the_store_refuses_them(engine: Engine) -> None:
    sink = AuditLogSink(engine, "t", interval=3600)
    sink.record("key.reveal", "x", {"pin1": "1234"})  # a secret field: the audit log refuses
    with pytest.raises(audit.SecretInAudit):
        sink.flush()
    assert "pending=1" in repr(sink)
