"""`simsmith console user …` and the demo's console user."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from simcore import audit
from simcore.console import users
from tests.helpers.cli import runner
from tools.cli import app

# Each test seeds a store with an HSM and logs in (an argon2id hash, ~0.5 s): slow.
pytestmark = pytest.mark.slow


@pytest.fixture
def env(engine: Engine, tmp_path: Path) -> dict[str, str]:
    return {"SIMSMITH_HOME": str(tmp_path),
            "SIMSMITH_DATABASE_URL": engine.url.render_as_string(hide_password=False)}


def test_user_add_list_disable(engine: Engine, env: dict[str, str]) -> None:
    r = runner.invoke(app, ["console", "user", "add", "alice", "--scopes", "sims:read,sims:write",
                            "--password-stdin", "--json"], input="a long pass phrase\n", env=env)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"id": 1, "username": "alice",
                                    "scopes": ["sims:read", "sims:write"]}
    assert users.authenticate(engine, "alice", "a long pass phrase").username == "alice"
    r = runner.invoke(app, ["console", "user", "add", "bob", "--scope", "sims:read",
                            "--generate", "--json"], env=env)
    password = json.loads(r.stdout)["password"]
    assert len(password) == 20 and users.authenticate(engine, "bob", password)
    listed = json.loads(runner.invoke(app, ["console", "user", "list", "--json"], env=env).stdout)
    assert [u["username"] for u in listed] == ["alice", "bob"]
    assert "password" not in json.dumps(listed) and "argon2" not in json.dumps(listed)
    assert runner.invoke(app, ["console", "user", "disable", "bob"], env=env).exit_code == 0
    with pytest.raises(users.BadCredentials):
        users.authenticate(engine, "bob", password)
    events = [e.action for e in audit.query(engine, subject_id="bob")]
    assert events == ["console.user_create", "console.user_disable"]


def test_bad_input_is_refused_by_field(env: dict[str, str]) -> None:
    r = runner.invoke(app, ["console", "user", "add", "Al ice", "--scopes", "sims:read",
                            "--generate"], env=env)
    assert r.exit_code == 1 and "username" in r.stderr and "at 0" in r.stderr
    r = runner.invoke(app, ["console", "user", "add", "carol", "--scopes", "root",
                            "--generate"], env=env)
    assert r.exit_code == 1 and "unknown scope" in r.stderr
    r = runner.invoke(app, ["console", "user", "add", "dave", "--scopes", "sims:read",
                            "--password-stdin"], input="short\n", env=env)
    assert r.exit_code == 1 and "password" in r.stderr and "short" not in r.stderr.replace(
        "too short", "")


def test_demo_makes_a_console_user_with_a_workspace_password(tmp_path: Path) -> None:
    env = {"SIMSMITH_HOME": str(tmp_path / "ws")}
    assert runner.invoke(app, ["demo", "--json"], env=env).exit_code == 0
    path = tmp_path / "ws" / "demo-console-password"
    password = path.read_text().strip()
    assert len(password) == 20 and path.stat().st_mode & 0o077 == 0
    other = tmp_path / "ws2"
    assert runner.invoke(app, ["demo", "--json"], env={"SIMSMITH_HOME": str(other)}
                         ).exit_code == 0
    assert (other / "demo-console-password").read_text().strip() != password
