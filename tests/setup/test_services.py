"""The service scripts work from a checkout the `postgres` user cannot enter.

`make test` runs as root on CI. initdb and the server run as `postgres`, which cannot enter a root
user's home (mode 0700); scripts/services/postgres.sh must keep the cluster where postgres can
reach it. This starts a second, throwaway cluster from a copy of the scripts placed under a 0700
directory (its socket is private, so it coexists with the suite's own cluster) and queries it.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.helpers.services import services_required

ROOT = Path(__file__).resolve().parents[2]


def _env_url(env_file: Path) -> str:
    line = env_file.read_text().strip()
    assert line.startswith("export SIMSMITH_TEST_PG_URL=")
    return line.split("=", 1)[1].strip("'")


@pytest.mark.slow
def test_postgres_starts_from_a_checkout_under_a_0700_directory(tmp_path: Path) -> None:
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        if services_required():
            pytest.fail("PostgreSQL server binaries missing but the full suite requires them")
        pytest.skip("PostgreSQL server binaries not installed")
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    home.chmod(0o700)  # like /root: only its owner may enter
    checkout = home / "simsmith"
    shutil.copytree(ROOT / "scripts", checkout / "scripts")
    script = checkout / "scripts" / "services" / "postgres.sh"
    env = dict(os.environ, SIMSMITH_PG_PORT="54339")
    started = subprocess.run([str(script), "start"], env=env, capture_output=True, text=True,
                             timeout=120)
    try:
        assert started.returncode == 0, started.stderr
        url = _env_url(checkout / "build" / "services" / "postgres.env")
        eng = create_engine(url)
        with eng.connect() as c:
            assert c.execute(text("SELECT current_user")).scalar_one() == "simsmith"
        eng.dispose()
        if os.geteuid() == 0:
            # the cluster is outside the checkout, in a directory postgres owns
            location = Path((checkout / "build" / "pg.location").read_text().strip())
            assert not location.is_relative_to(home)
            assert location.is_dir()
    finally:
        stopped = subprocess.run([str(script), "stop"], env=env, capture_output=True, text=True,
                                 timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    if os.geteuid() == 0:
        assert not location.exists(), "stop removes the cluster's directory"
