from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simcore import apikeys, db
from tools.cli import app

runner = CliRunner()


@pytest.mark.slow
def test_apikey_create_list_revoke(tmp_path: Path) -> None:
    env = {"SIMSMITH_HOME": str(tmp_path)}
    assert runner.invoke(app, ["init"], env=env).exit_code == 0
    r = runner.invoke(app, ["apikey", "create", "--name", "shop", "--scopes",
                            "esim:order,sims:read", "--json"], env=env)
    assert r.exit_code == 0, r.output
    made = json.loads(r.stdout)
    assert made["scopes"] == ["esim:order", "sims:read"] and made["key"].startswith("ssk_")
    eng = db.make_engine(f"sqlite:///{tmp_path / 'simsmith.db'}")
    assert apikeys.authenticate(eng, made["key"]).name == "shop"
    listed = runner.invoke(app, ["apikey", "list", "--json"], env=env).stdout
    assert made["key"] not in listed and json.loads(listed)[0]["prefix"] in made["key"]
    bad = runner.invoke(app, ["apikey", "create", "--name", "x", "--scopes", "root"], env=env)
    assert bad.exit_code == 1 and "unknown scope" in bad.output
    assert runner.invoke(app, ["apikey", "revoke", str(made["id"])], env=env).exit_code == 0
    assert json.loads(runner.invoke(app, ["apikey", "list", "--json"], env=env).stdout
                      )[0]["revoked_at"]
