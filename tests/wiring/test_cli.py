"""The wired commands through Typer's runner: `inventory generate --with-keys`, `hsm vector`,
`esim build` / `build-batch`, `card program` / `verify` / `batch`, `inventory access-codes`.
Outputs never carry a key, PIN, PUK or ADM (but access-codes' PIN1/PUK1, on purpose); errors are
one line naming the input at fault."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cards.virtual.card import VirtualUicc
from esim.saip import ProfilePackage
from hsm_sim.kcv import kcv
from hsm_sim.milenage import Milenage
from hsm_sim.soft import SoftHsm
from simcore import audit, key_writers, keys, sqn_store
from tests.cards.conftest import Insert
from tests.helpers.cli import ok, refused, runner
from tests.helpers.hsm import clear
from tests.wiring.conftest import seed
from tools.cli import app


def secrets_of(hsm: SoftHsm, engine: Engine, iccid: str) -> list[str]:
    """A SIM's keys and codes as they could appear in output (hex, digits)."""
    k = keys.load_keys(engine, iccid)
    out = [clear(hsm, k.ki).hex(), clear(hsm, k.opc).hex()]
    codes = [clear(hsm, r) for n, r in k.credentials.items() if n in keys.CODES]
    # codes as hex, and as digits when 8 long (4 digits turn up in any text by chance)
    out += [c.decode() for c in codes if c.isdigit()] + [c.hex() for c in codes]
    out += [clear(hsm, r).hex() for n, r in k.credentials.items() if n in keys.OTA_KEYS]
    return out


@pytest.mark.parametrize("command", [
    ["inventory", "generate"], ["hsm", "vector"], ["esim", "build"], ["esim", "build-batch"],
    ["card", "program"], ["card", "verify"], ["card", "batch"], ["card", "emulate"],
    ["card", "identity"]])
@pytest.mark.slow
def test_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "--help" in result.output


@pytest.mark.slow
def test_generate_with_keys_then_vectors(cli_env: SoftHsm, engine: Engine) -> None:
    out = json.loads(ok("inventory", "generate", "-n", "3", "--batch", "e1", "--kind", "esim",
                        "--with-keys", "--json"))
    assert out["count"] == 3 and out["keys"].startswith("Ki, OPc, PIN1")
    iccid = out["first_iccid"]
    v = json.loads(ok("hsm", "vector", iccid, "--count", "2", "--rand", "00" * 16, "--sqn",
                      "20", "--json"))
    k = keys.load_keys(engine, iccid)
    m = Milenage(clear(cli_env, k.ki), clear(cli_env, k.opc))
    want = m.vector(bytes(16), 0x40, b"\x80\x00")
    assert v["vectors"][1]["sqn"] == "000000000040" and v["vectors"][1]["xres"] == want.xres.hex()
    assert v["vectors"][1]["autn"] == want.autn.hex()
    table = ok("hsm", "vector", iccid)
    assert "SQN" in table and "XRES" in table
    for secret in secrets_of(cli_env, engine, iccid):
        assert secret not in table.lower() and secret not in json.dumps(v) + json.dumps(out)
    assert "no SIM with ICCID 8988211000000999998" in refused("hsm", "vector",
                                                               "8988211000000999998")
    assert "--rand" in refused("hsm", "vector", iccid, "--rand", "zz")
    # a physical batch without keys: the vector command says what to do
    ok("inventory", "generate", "-n", "1", "--batch", "p1")
    plain = json.loads(ok("inventory", "list", "--batch", "p1", "--json"))[0]["iccid"]
    assert "--with-keys" in refused("hsm", "vector", plain)


@pytest.mark.slow
def test_vector_uses_the_stored_sqn_and_resyncs(cli_env: SoftHsm, engine: Engine) -> None:
    from cards.virtual.aka import CardAka, SyncFailure
    from cards.virtual.milenage_card import Milenage as CardMilenage

    out = json.loads(ok("inventory", "generate", "-n", "1", "--batch", "s1", "--with-keys",
                        "--json"))
    iccid = out["first_iccid"]
    first = json.loads(ok("hsm", "vector", iccid, "-n", "2", "--json"))
    second = json.loads(ok("hsm", "vector", iccid, "--json"))
    sqns = [int(v["sqn"], 16) for v in first["vectors"] + second["vectors"]]
    assert [s >> 5 for s in sqns] == [sqns[0] >> 5, (sqns[0] >> 5) + 1, (sqns[0] >> 5) + 2]
    assert [s & 31 for s in sqns] == [0, 1, 2]
    assert second["stored_sqn"] == {"seq": sqns[-1] >> 5, "ind": 2}
    assert "stored SQN: SEQ" in ok("hsm", "vector", iccid)
    # a card an HSS moved on answers AUTS; the command resynchronises the store with it
    k = keys.load_keys(engine, iccid)
    card_m, card = CardMilenage(clear(cli_env, k.ki), clear(cli_env, k.opc)), CardAka()
    card.seq = [(sqns[-1] >> 5) + 500] * 32
    v = sqn_store.fresh_vectors(engine, cli_env, k)[0]
    with pytest.raises(SyncFailure) as e:
        card.authenticate(card_m, v.rand, v.autn)
    r = json.loads(ok("hsm", "vector", iccid, "--auts", e.value.auts.hex(), "--auts-rand",
                      v.rand.hex(), "--json"))
    assert r["stored_sqn"]["seq"] == (sqns[-1] >> 5) + 501
    got = r["vectors"][0]
    card.authenticate(card_m, bytes.fromhex(got["rand"]), bytes.fromhex(got["autn"]))
    assert "MAC-S does not verify" in refused("hsm", "vector", iccid, "--auts", "00" * 14,
                                              "--auts-rand", v.rand.hex())
    assert "go together" in refused("hsm", "vector", iccid, "--auts", "00" * 14)
    assert "one vector" in refused("hsm", "vector", iccid, "--auts", "00" * 14, "--auts-rand",
                                   "00" * 16, "-n", "2")


@pytest.mark.slow
def test_esim_build_and_batch(cli_env: SoftHsm, engine: Engine, tmp_path: Path) -> None:
    ok("hsm", "kek", "add", "lab", "--purpose", "export", "--insecure-clear")
    lab = ("--target", "lab", "--clear")  # clear packages, to decode them here
    ok("inventory", "generate", "-n", "3", "--batch", "e1", "--kind", "esim", "--with-keys")
    iccid = json.loads(ok("inventory", "list", "--batch", "e1", "--json"))[0]["iccid"]
    der_path = tmp_path / "one.der"
    shown = ok("esim", "build", "--template", "usim-isim-milenage", "--iccid", iccid, "-o",
               str(der_path), *lab)
    assert f"ICCID {iccid}" in shown and "validated" in shown
    assert stat.S_IMODE(der_path.stat().st_mode) == 0o600
    package = ProfilePackage.from_der(der_path.read_bytes())
    k = keys.load_keys(engine, iccid)
    _, algo = package.all("akaParameter")[0].value["algoConfiguration"]
    assert kcv(algo["key"]) == cli_env.kcv(k.ki) and kcv(algo["opc"]) == cli_env.kcv(k.opc)
    inspected = ok("esim", "inspect", str(der_path))
    for secret in secrets_of(cli_env, engine, iccid):
        assert secret not in (shown + inspected).lower()
    out_dir = tmp_path / "pkgs"
    summary = json.loads(ok("esim", "build-batch", "--template", "usim-isim-milenage",
                            "--batch", "e1", "-o", str(out_dir), *lab, "--verify-every", "2",
                            "--json"))
    assert summary["packages"] == 3 and len(list(out_dir.glob("*.der"))) == 3
    assert (out_dir / f"{iccid}.der").read_bytes() == der_path.read_bytes()
    # errors: one line naming the input
    assert "--template nope" in refused("esim", "build", "--template", "nope", "--iccid", iccid,
                                        "-o", str(der_path), *lab)
    ok("inventory", "generate", "-n", "1", "--batch", "p1", "--with-keys")  # physical: no OTA
    plain = json.loads(ok("inventory", "list", "--batch", "p1", "--json"))[0]["iccid"]
    assert "no ota-kvn01-kid01" in refused("esim", "build", "-t", "usim-isim-milenage",
                                           "--iccid", plain, "-o", str(tmp_path / "x.der"), *lab)
    assert "no batch named 'zz'" in refused("esim", "build-batch", "-t", "ts48", "--batch", "zz",
                                            "-o", str(out_dir), *lab)


def test_card_program_verify_batch(cli_env: SoftHsm, engine: Engine, insert: Insert) -> None:
    ok("inventory", "generate", "-n", "2", "--batch", "c1", "--state", "blank", "--with-keys")
    iccids = [s["iccid"] for s in json.loads(ok("inventory", "list", "--batch", "c1", "--json"))]
    plan = ok("card", "program", "--iccid", iccids[0], "--dry-run", "--driver",
              "sysmoUSIM-SJS1")
    assert "<16 secret bytes>" in plan and "VERIFY ADM1" in plan
    adm = [key_writers.SimKeyWriter(cli_env, keys.load_keys(engine, i)).adm1(i).reveal().decode()
           for i in iccids]
    vcard, reader = insert(VirtualUicc("sysmoISIM-SJA2", iccid=iccids[0], adm1=adm[0]))
    traced = runner.invoke(app, ["card", "program", "--reader", reader, "--next-from-batch",
                                 "c1", "--json", "--trace"])
    assert traced.exit_code == 0, traced.output
    assert "00 20 00 0A 08" in traced.stderr  # VERIFY ADM1 traced, its code masked
    out = json.loads(traced.stdout)
    assert out["status"] == "programmed" and out["iccid"] == iccids[0]
    read = json.loads(ok("card", "read", "--reader", reader, "--json"))
    assert read["iccid"] == iccids[0]
    verified = json.loads(ok("card", "verify", "--reader", reader, "--json"))
    assert verified["verified"] and verified["state"] == "personalised"
    assert "already personalised" in ok("card", "program", "--reader", reader, "--iccid",
                                        iccids[0])
    text = ok("card", "verify", "--reader", reader)
    shown = (text + traced.output + json.dumps(verified)).lower().replace(" ", "")
    for secret in secrets_of(cli_env, engine, iccids[0]):
        assert secret not in shown
    vcard.stop()
    # wrong ADM: one try spent, one line, nothing recorded
    bad, reader2 = insert(VirtualUicc("sysmoISIM-SJA2", iccid=iccids[1], adm1="11111111"),
                          slot=2)
    assert "2 tries left" in refused("card", "program", "--reader", reader2, "--iccid",
                                     iccids[1])
    # --adm1-prompt: the operator types the card's own code (hidden); keys still from the HSM
    assert "--adm1-prompt" in runner.invoke(app, [
        "card", "program", "--reader", reader2, "--iccid", iccids[1], "--adm1-prompt"],
        input="12ab\n").stderr
    typed = runner.invoke(app, ["card", "program", "--reader", reader2, "--iccid", iccids[1],
                                "--adm1-prompt", "--json"], input="11111111\n")
    assert typed.exit_code == 0, typed.output
    assert json.loads(typed.stdout)["status"] == "programmed" and "11111111" not in typed.output
    bad.stop()
    # a batch on reader 1: programs its card, then ends as no blank SIM is left
    ok("inventory", "generate", "-n", "1", "--batch", "c2", "--state", "blank", "--with-keys")
    i3 = json.loads(ok("inventory", "list", "--batch", "c2", "--json"))[0]["iccid"]
    a3 = key_writers.SimKeyWriter(cli_env, keys.load_keys(engine, i3)).adm1(i3).reveal().decode()
    insert(VirtualUicc("sysmoISIM-SJA2", iccid=i3, adm1=a3), slot=1)
    summary = json.loads(ok("card", "batch", "--batch", "c2", "--reader", "1", "--json"))
    assert (summary["programmed"], summary["failed"], summary["blank_left"]) == (1, 0, 0)
    assert "error: no batch named 'zz'" in refused("card", "batch", "--batch", "zz")


def test_inventory_access_codes(cli_env: SoftHsm, engine: Engine) -> None:
    """`inventory access-codes` shows PIN1/PUK1 (customer care) and audits the read."""
    out = json.loads(ok("inventory", "generate", "-n", "1", "--batch", "ac", "--with-keys",
                        "--json"))
    iccid = out["first_iccid"]
    creds = keys.load_keys(engine, iccid).credentials
    pin1 = clear(cli_env, creds["PIN1"]).rstrip(b"\xff").decode()
    puk1 = clear(cli_env, creds["PUK1"]).decode()
    shown = json.loads(ok("inventory", "access-codes", iccid, "--reason", "ticket 9", "--json"))
    assert shown == {"iccid": iccid, "pin1": pin1, "puk1": puk1}
    assert puk1 in ok("inventory", "access-codes", iccid, "--reason", "ticket 10")
    trail = ok("audit", "list", "--subject", iccid, "--json")
    assert trail.count("sim.access_codes_revealed") == 2 and puk1 not in trail
    assert "no SIM with ICCID" in refused("inventory", "access-codes", "8988211000000999998",
                                          "--reason", "x")
    assert runner.invoke(app, ["inventory", "access-codes", iccid]).exit_code == 2  # no reason


def test_inventory_service_codes(cli_env: SoftHsm, engine: Engine) -> None:
    """`inventory service-codes` shows PIN2/PUK2/ADM1 (a service centre) and audits the read."""
    out = json.loads(ok("inventory", "generate", "-n", "1", "--batch", "sc", "--with-keys",
                        "--json"))
    iccid = out["first_iccid"]
    creds = keys.load_keys(engine, iccid).credentials
    want = {n.lower(): clear(cli_env, creds[n]).rstrip(b"\xff").decode()
            for n in ("PIN2", "PUK2", "ADM1")}
    shown = json.loads(ok("inventory", "service-codes", iccid, "--reason", "SO-9", "--json"))
    assert shown == {"iccid": iccid, **want}
    trail = ok("audit", "list", "--subject", iccid, "--json")
    assert trail.count("sim.service_codes_revealed") == 1 and want["adm1"] not in trail
    assert runner.invoke(app, ["inventory", "service-codes", iccid]).exit_code == 2  # no reason


@pytest.mark.storage
def test_card_emulate_from_inventory_is_refused_in_production(
        cli_env: SoftHsm, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    iccid = seed(engine, cli_env, 1, batch="lab")[0]
    monkeypatch.setenv("SIMSMITH_MODE", "production")
    err = refused("card", "emulate", "--from-inventory", iccid, "--slot", "3")
    assert "refused in production mode" in err
    assert audit.query(engine, action="card.lab_seed") == []


@pytest.mark.slow
def test_card_suci_program_read_identity(cli_env: SoftHsm, engine: Engine,
                                         insert: Insert) -> None:
    """Issue 20 item 3 through the CLI: `suci key generate`, `card program --suci-by usim`,
    `card read` shows the SUCI configuration, `card identity --deconceal` gets the card's SUCI
    and its IMSI through the HSM; a bad --suci-by is one line."""
    ok("suci", "key", "generate", "--key-id", "7", "--profile", "A")
    ok("inventory", "generate", "-n", "1", "--batch", "s1", "--state", "blank", "--with-keys")
    sim = json.loads(ok("inventory", "list", "--batch", "s1", "--json"))[0]
    iccid = sim["iccid"]
    adm = key_writers.SimKeyWriter(cli_env, keys.load_keys(engine, iccid)).adm1(iccid)
    vcard, reader = insert(VirtualUicc("sysmoISIM-SJA5", iccid=iccid,
                                       adm1=adm.reveal().decode()))
    assert "suci_by" in refused("card", "program", "--reader", reader, "--iccid", iccid,
                                "--suci-by", "phone")
    ok("card", "program", "--reader", reader, "--iccid", iccid, "--suci-by", "usim")
    table = ok("card", "read", "--reader", reader)
    assert "the card (GET IDENTITY)" in table and "A key 7, null" in table
    got = json.loads(ok("card", "identity", "--reader", reader, "--deconceal", "--json"))
    assert got["suci"].startswith("suci-0-001-01-0-1-7-") and got["key_id"] == 7
    assert got["imsi"] == sim["imsi"] and got["supi"] == f"imsi-{sim['imsi']}"
    vcard.stop()
