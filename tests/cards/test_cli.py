"""`simsmith card …` through Typer's runner and, for `emulate`, as a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from cards.pcsc import PcscTransport, wait_for_card_state
from cards.personalise import program_card
from cards.virtual.card import VirtualUicc
from tests.cards.conftest import Insert, PcscEnv
from tests.cards.helpers import key_writer, profile, vector
from tools.card_cli import app

runner = CliRunner()


def test_help_everywhere() -> None:
    for args in ([], ["read"], ["emulate"], ["list-readers"], ["plan"]):
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0, result.output


def test_plan_masks_secrets() -> None:
    result = runner.invoke(app, ["plan", "--driver", "sysmoUSIM-SJS1", "--iccid",
                                 "8988211000000000011", "--imsi", "001010000000011"])
    assert result.exit_code == 0, result.output
    assert "<16 secret bytes>" in result.output and "<17 secret bytes>" in result.output
    bad = runner.invoke(app, ["plan", "--driver", "nope", "--iccid", "8988211000000000011",
                              "--imsi", "001010000000011"])
    assert bad.exit_code == 1 and "no driver 'nope'" in bad.output


def test_list_and_read(insert: Insert, pcsc: PcscEnv) -> None:
    result = runner.invoke(app, ["list-readers", "--json"])
    assert result.exit_code == 0
    assert [r["name"] for r in json.loads(result.output)][:4] == pcsc.readers
    card = VirtualUicc("sysmoISIM-SJA2")
    _, reader = insert(card)
    with PcscTransport(reader, timeout=2) as t:
        program_card(t, profile(), key_writer(), vector())
    result = runner.invoke(app, ["read", "--reader", reader, "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["imsi"] == "001010000000011" and info["tries_left"]["ADM1"] == 3
    table = runner.invoke(app, ["read", "--reader", reader, "--trace"])
    assert table.exit_code == 0 and "sysmoISIM-SJA2" in table.output
    empty = runner.invoke(app, ["read", "--reader", pcsc.readers[3]])
    assert empty.exit_code == 1 and empty.output.count("\n") == 1 and "no card" in empty.output


def test_emulate_process_with_state(pcsc: PcscEnv, tmp_path: Path) -> None:
    state = tmp_path / "sjs1.json"
    env = {**os.environ, "SIMSMITH_EMULATE_ADM1": "12345678"}
    cmd = [sys.executable, "-m", "tools.cli", "card", "emulate", "--type", "sysmoUSIM-SJS1",
           "--state", str(state), "--slot", "3"]
    reader = pcsc.readers[3]
    for round_ in range(2):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=Path(__file__).resolve().parents[2])
        try:
            # A CLI process start: tens of seconds on a loaded machine, not a hang.
            wait_for_card_state(reader, present=True, timeout=60)
            with PcscTransport(reader, timeout=2) as t:
                if round_ == 0:
                    program_card(t, profile(imsi="001010000000099"), key_writer(), vector())
                else:  # the card kept its contents across the restart
                    from cards.read import read_card

                    assert read_card(t)["imsi"] == "001010000000099"
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        assert "emulating sysmoUSIM-SJS1" in out, err
        assert "12345678" not in out + err
        wait_for_card_state(reader, present=False, timeout=30)
