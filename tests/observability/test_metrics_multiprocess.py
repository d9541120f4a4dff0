"""Several worker processes, one scrape: with PROMETHEUS_MULTIPROC_DIR, metrics_text() sums what
every process recorded (prometheus-client's multiprocess mode)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

RECORD = """
from simcore import telemetry
telemetry.record_http("GET", "/v1/sims", 200, 0.003)
telemetry.record_step("activation", "hlr", "ok", 0.02)
telemetry.count_retry("activation", "hlr")
"""
SCRAPE = """
import sys
from simcore import telemetry
sys.stdout.write(telemetry.metrics_text()[0].decode())
"""


@pytest.mark.slow
def test_two_workers_one_scrape(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", RECORD], env=env, check=True, timeout=60)
    out = subprocess.run([sys.executable, "-c", SCRAPE], env=env, check=True, timeout=60,
                         capture_output=True, text=True).stdout
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value
              for f in text_string_to_metric_families(out) for s in f.samples}
    assert values[("simsmith_http_requests_total",
                   (("method", "GET"), ("route", "/v1/sims"), ("status", "200")))] == 2
    assert values[("simsmith_workflow_step_retries_total",
                   (("step", "hlr"), ("workflow", "activation")))] == 2
    assert values[("simsmith_workflow_step_duration_seconds_count",
                   (("outcome", "ok"), ("step", "hlr"), ("workflow", "activation")))] == 2
