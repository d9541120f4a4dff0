"""`simsmith hsm`: key ceremony, KEKs, and Milenage/TUAK/OPc/KCV calculators for engineers.

The HSM lives in `$SIMSMITH_HOME/hsm` (soft backend). Commands that need the master key open the
HSM with, in order: SIMSMITH_HSM_PASSPHRASE (dev keystores), the sealed dev file (insecure, for
`make run`), or the custodians' components typed at hidden prompts. Output never shows a key
except the calculators' requested outputs; keys and components are echoed only as KCVs.
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer

from hsm_sim import ceremony
from hsm_sim.errors import DevModeWarning, HsmError
from hsm_sim.hsm import KekInfo, KekPurpose
from hsm_sim.kcv import kcv, legacy_kcv
from hsm_sim.keystore import Keystore
from hsm_sim.milenage import Milenage, derive_opc
from hsm_sim.soft import SoftHsm
from hsm_sim.tuak import Tuak, derive_topc
from tools.common import JsonOpt, console, err_console, fail, print_json, print_table

app = typer.Typer(no_args_is_help=True, help="Key custody: ceremony, KEKs, calculators.")
kek_app = typer.Typer(no_args_is_help=True, help="Key-encryption keys: storage, transport, export.")
app.add_typer(kek_app, name="kek")

P = ParamSpec("P")
R = TypeVar("R")


def hsm_dir() -> Path:
    """`$SIMSMITH_HOME/hsm`, from simcore's settings."""
    from simcore.hsm_access import hsm_dir as configured_dir

    return configured_dir()


def backend() -> str:
    """SIMSMITH_HSM_BACKEND: `soft` (default) or `pkcs11`."""
    from simcore.hsm_access import HsmUnavailable, hsm_backend

    try:
        return hsm_backend()
    except HsmUnavailable as e:
        fail(str(e))
        raise AssertionError("unreachable") from e


def open_pkcs11() -> Any:
    """The PKCS#11 backend of the configuration (simcore.hsm_access.open_pkcs11)."""
    from simcore.hsm_access import HsmUnavailable
    from simcore.hsm_access import open_pkcs11 as open_configured

    try:
        return open_configured()
    except HsmUnavailable as e:
        fail(str(e))
        raise AssertionError("unreachable") from e


def _errors(fn: Callable[P, R]) -> Callable[P, R]:
    """HsmError -> one line on stderr, exit 1; dev-mode warnings -> printed loudly on stderr."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DevModeWarning)
            try:
                return fn(*args, **kwargs)
            except HsmError as e:
                fail(str(e))
                raise AssertionError("unreachable") from e
            finally:
                for msg in dict.fromkeys(str(w.message) for w in caught):
                    err_console.print(f"warning: {msg}", markup=False)

    return wrapper


hsm_errors = _errors  # for the other nouns' commands that open the HSM


def _hex(option: str, value: str, sizes: tuple[int, ...]) -> bytes:
    """Parse a hex option; the error names the option, never echoes the value."""
    v = value.strip().replace(" ", "").replace(":", "")
    try:
        raw = bytes.fromhex(v)
    except ValueError:
        fail(f"{option}: not hexadecimal")
        raise AssertionError("unreachable") from None
    if len(raw) not in sizes:
        want = " or ".join(f"{s * 2}" for s in sizes)
        fail(f"{option}: expected {want} hex digits, got {len(v)}")
    return raw


def _kcv_line(label: str, key: bytes) -> str:
    return f"{label}: KCV {kcv(key).hex().upper()} (legacy ECB KCV {legacy_kcv(key).hex().upper()})"


def _prompt_components(what: str, count: int | None) -> list[bytes]:
    n = count or typer.prompt(f"Number of {what} components", type=int, err=True)
    out = []
    for i in range(1, n + 1):
        value = typer.prompt(f"{what} component {i} of {n} (hex, hidden)", hide_input=True,
                             err=True)
        key = _hex(f"{what} component {i}", value, (16, 24, 32))
        err_console.print(_kcv_line(f"{what} component {i}", key), markup=False)
        out.append(key)
    return out


def audit_sink() -> Any:
    """An audit sink into the workspace's audit log (None without an initialised store), closed
    (flushed) when the running command ends."""
    import atexit

    try:  # Typer >= 0.2x runs its own copy of click
        from typer._click.globals import get_current_context
    except ImportError:  # pragma: no cover - older Typer on click
        from click import get_current_context  # type: ignore[no-redef]

    from simcore.hsm_access import store_audit_sink
    from tools.common import actor

    sink = store_audit_sink(actor())
    if sink is not None:
        ctx = get_current_context(silent=True)
        if ctx is not None:
            ctx.call_on_close(sink.close)
        else:
            atexit.register(sink.close)
    return sink


def open_hsm(audit: Any = None) -> Any:
    """The configured HSM (simcore.hsm_access.open_hsm) with custodians' prompts, reporting to
    the workspace's audit log (`audit`, else a new audit_sink())."""
    from simcore.hsm_access import HsmUnavailable
    from simcore.hsm_access import open_hsm as open_configured

    try:
        return open_configured(
            components=lambda n: _prompt_components("master", n),
            passphrase=lambda: typer.prompt("Dev passphrase", hide_input=True, err=True),
            audit=audit if audit is not None else audit_sink())
    except HsmUnavailable as e:
        fail(str(e))
        raise AssertionError("unreachable") from e


# --- ceremony --------------------------------------------------------------------------------


@app.command("init")
@_errors
def init(
    component: list[str] = typer.Option(
        [], "--component", help="A custodian's master key component (hex); repeat 2..n times. "
        "Prompted (hidden) when omitted."),
    dev_passphrase: str | None = typer.Option(
        None, "--dev-passphrase", help="INSECURE dev mode: derive the master key from this "
        "passphrase (scrypt)."),
    seal_dev: bool = typer.Option(
        False, "--seal-dev", help="INSECURE: also write a sealed dev file so `make run` opens "
        "the HSM unattended."),
    as_json: bool = JsonOpt,
) -> None:
    """Key ceremony: create the master key from components (XOR) or a dev passphrase."""
    if backend() == "pkcs11":
        if component or dev_passphrase is not None or seal_dev:
            fail("the pkcs11 backend keeps its keys in the token: init takes no master key", 2)
        p11 = open_pkcs11()  # creates the token's storage KEK on first use
        info = next(k for k in p11.kek_list() if k.purpose is KekPurpose.STORAGE)
        p11.close()
        if as_json:
            print_json({"backend": "pkcs11", "storage_kek": info.as_dict()})
        else:
            console.print(f"pkcs11 token ready: storage KEK {info.name} KCV {info.kcv.upper()}",
                          markup=False)
        return
    d = hsm_dir()
    if dev_passphrase is not None and component:
        fail("--component and --dev-passphrase exclude each other", 2)
    comps: list[bytes] | None = None
    if dev_passphrase is None:
        if component:
            comps = [_hex(f"--component {i}", c, (16, 24, 32)) for i, c in enumerate(component, 1)]
        else:
            comps = _prompt_components("master", None)
    hsm = SoftHsm.init(d, components=comps, passphrase=dev_passphrase)
    if seal_dev:
        hsm.seal_dev()
        err_console.print("warning: wrote the INSECURE sealed dev file", markup=False)
    st = hsm.status()
    comp_checks = [ceremony.key_check(c) for c in comps or []]
    if as_json:
        print_json({**st, "component_kcvs": [c.kcv for c in comp_checks],
                    "component_legacy_kcvs": [c.legacy_kcv for c in comp_checks],
                    "sealed_dev": seal_dev})
        return
    for i, c in enumerate(comp_checks, 1):
        console.print(f"component {i}: KCV {c.kcv.upper()} (legacy ECB KCV "
                      f"{c.legacy_kcv.upper()})", markup=False)
    console.print(f"master key: KCV {st['master_kcv'].upper()} (legacy ECB KCV "
                  f"{st['master_legacy_kcv'].upper()}), source {st['master_source']}",
                  markup=False)
    console.print(f"HSM initialised in {d}", markup=False)


@app.command("status")
@_errors
def status(as_json: bool = JsonOpt) -> None:
    """Show where the HSM lives, how its master key was made (KCVs only) and its KEK count."""
    if backend() == "pkcs11":
        hsm = open_pkcs11()
        from simcore.config import get_settings

        data: dict[str, Any] = {"backend": "pkcs11", "token": get_settings().pkcs11_token,
                                "keks": len(hsm.kek_list())}
        hsm.close()
        if as_json:
            print_json(data)
        else:
            print_table("HSM", ["field", "value"], data.items())
        return
    d = hsm_dir()
    if not Keystore.exists(d):
        fail(f"no HSM in {d}: run `simsmith hsm init`")
    s = Keystore.load(d)
    data = {
        "backend": "soft", "directory": str(d), "master_source": s.master_source,
        "master_components": s.master_components, "master_kcv": s.master_kcv,
        "master_legacy_kcv": s.master_legacy_kcv, "keks": len(s.keks),
        "sealed_dev_file": (d / "dev-master.sealed").is_file(),
    }
    if as_json:
        print_json(data)
        return
    if s.master_source == "dev-passphrase":
        err_console.print(ceremony.DEV_WARNING, markup=False)
    print_table("HSM", ["field", "value"], data.items())


# --- KEKs ------------------------------------------------------------------------------------


def _kek_row(k: KekInfo) -> list[Any]:
    return [k.name, k.purpose.value, k.kcv.upper() or "-", k.legacy_kcv.upper() or "-",
            "yes" if k.insecure_clear else "", "yes" if k.derived else ""]


@kek_app.command("add")
@_errors
def kek_add(
    name: str = typer.Argument(..., help="KEK name, e.g. the SIM vendor or HSS it is shared with."),
    purpose: KekPurpose = typer.Option(..., "--purpose", help="transport | export | storage"),
    component: list[str] = typer.Option(
        [], "--component", help="A component of the KEK (hex); repeat for 2..n components."),
    insecure_clear: bool = typer.Option(
        False, "--insecure-clear", help="Export target that receives keys in CLEAR (open-source "
        "HLRs); audited."),
    expected_kcv: str | None = typer.Option(
        None, "--kcv", help="The KCV announced with the key, 6 hex digits (AES-CMAC, legacy "
        "ECB or, for a 16 or 24 byte 3DES transport key, 3DES-ECB): a wrong component is "
        "refused."),
    as_json: bool = JsonOpt,
) -> None:
    """Add a named KEK; prints its name, purpose and KCV (never the key)."""
    comps = [_hex(f"--component {i}", c, (16, 24, 32)) for i, c in enumerate(component, 1)]
    if expected_kcv is not None:
        _hex("--kcv", expected_kcv, (3,))
    for i, c in enumerate(comps, 1):
        err_console.print(_kcv_line(f"component {i}", c), markup=False)
    hsm = open_hsm()
    info = hsm.kek_add(name, purpose, comps or None, insecure_clear=insecure_clear,
                       expected_kcv=expected_kcv)
    if as_json:
        print_json(info.as_dict())
        return
    if info.insecure_clear:
        console.print(f"{info.name} ({info.purpose.value}): INSECURE clear export target",
                      markup=False)
    else:
        console.print(f"{info.name} ({info.purpose.value}): KCV {info.kcv.upper()} "
                      f"(legacy ECB KCV {info.legacy_kcv.upper()})", markup=False)


@kek_app.command("list")
@_errors
def kek_list(as_json: bool = JsonOpt) -> None:
    """List KEKs by name, purpose and KCV."""
    if backend() == "pkcs11":
        hsm = open_pkcs11()
        keks = hsm.kek_list()
        hsm.close()
    else:
        keks = [r.info() for r in Keystore.load(hsm_dir()).keks.values()]
    if as_json:
        print_json([k.as_dict() for k in keks])
        return
    print_table("KEKs", ["name", "purpose", "KCV", "legacy KCV", "insecure clear", "derived"],
                [_kek_row(k) for k in keks])


# --- calculators -----------------------------------------------------------------------------


_LABELS = {
    "opc": "OPc", "topc": "TOPc", "f1": "f1 (MAC-A)", "f1star": "f1* (MAC-S)", "f2": "f2 (RES)",
    "f3": "f3 (CK)", "f4": "f4 (IK)", "f5": "f5 (AK)", "f5star": "f5* (AK*)", "autn": "AUTN",
}


def _show(values: dict[str, bytes], as_json: bool, title: str) -> None:
    if as_json:
        print_json({k: v.hex() for k, v in values.items()})
        return
    print_table(title, ["output", "value"],
                [(_LABELS.get(k, k), v.hex().upper()) for k, v in values.items()])


def _sqn(value: str) -> int:
    raw = _hex("--sqn", value.rjust(12, "0"), (6,))
    return int.from_bytes(raw, "big")


@app.command("milenage")
@_errors
def milenage(
    k: str = typer.Option(..., "--k", help="K (32 hex digits)."),
    op: str | None = typer.Option(None, "--op", help="OP (32 hex digits); or give --opc."),
    opc: str | None = typer.Option(None, "--opc", help="OPc (32 hex digits); or give --op."),
    rand: str = typer.Option(..., "--rand", help="RAND (32 hex digits)."),
    sqn: str = typer.Option(..., "--sqn", help="SQN (up to 12 hex digits)."),
    amf: str = typer.Option("8000", "--amf", help="AMF (4 hex digits)."),
    as_json: bool = JsonOpt,
) -> None:
    """Milenage calculator (TS 35.206): OPc, f1, f1*, f2..f5, f5* and AUTN."""
    key = _hex("--k", k, (16,))
    if (op is None) == (opc is None):
        fail("give exactly one of --op and --opc", 2)
    opc_b = derive_opc(key, _hex("--op", op, (16,))) if op is not None else _hex("--opc", opc or "",
                                                                                 (16,))
    r, a, s = _hex("--rand", rand, (16,)), _hex("--amf", amf, (2,)), _sqn(sqn)
    m = Milenage(key, opc_b)
    out = m.all_functions(r, s.to_bytes(6, "big"), a)
    autn = m.vector(r, s, a).autn
    _show({"opc": opc_b, **out, "autn": autn}, as_json, "Milenage")


@app.command("tuak")
@_errors
def tuak(
    k: str = typer.Option(..., "--k", help="K (32 or 64 hex digits)."),
    top: str | None = typer.Option(None, "--top", help="TOP (64 hex digits); or give --topc."),
    topc: str | None = typer.Option(None, "--topc", help="TOPc (64 hex digits); or give --top."),
    rand: str = typer.Option(..., "--rand", help="RAND (32 hex digits)."),
    sqn: str = typer.Option(..., "--sqn", help="SQN (up to 12 hex digits)."),
    amf: str = typer.Option("8000", "--amf", help="AMF (4 hex digits)."),
    mac_bits: int = typer.Option(64, "--mac-bits", help="MAC length: 64, 128 or 256."),
    res_bits: int = typer.Option(64, "--res-bits", help="RES length: 32, 64, 128 or 256."),
    ck_bits: int = typer.Option(128, "--ck-bits", help="CK length: 128 or 256."),
    ik_bits: int = typer.Option(128, "--ik-bits", help="IK length: 128 or 256."),
    iterations: int = typer.Option(1, "--iterations", help="Keccak iterations."),
    as_json: bool = JsonOpt,
) -> None:
    """TUAK calculator (TS 35.231): TOPc, f1, f1*, f2..f5, f5* and AUTN."""
    key = _hex("--k", k, (16, 32))
    if (top is None) == (topc is None):
        fail("give exactly one of --top and --topc", 2)
    for opt, bits, allowed in (("--mac-bits", mac_bits, (64, 128, 256)),
                               ("--res-bits", res_bits, (32, 64, 128, 256)),
                               ("--ck-bits", ck_bits, (128, 256)), ("--ik-bits", ik_bits,
                                                                    (128, 256))):
        if bits not in allowed:
            fail(f"{opt}: expected one of {', '.join(map(str, allowed))}, got {bits}", 2)
    topc_b = (derive_topc(key, _hex("--top", top, (32,)), iterations) if top is not None
              else _hex("--topc", topc or "", (32,)))
    r, a, s = _hex("--rand", rand, (16,)), _hex("--amf", amf, (2,)), _sqn(sqn)
    t = Tuak(key, topc_b, mac_len=mac_bits // 8, res_len=res_bits // 8, ck_len=ck_bits // 8,
             ik_len=ik_bits // 8, iterations=iterations)
    sb = s.to_bytes(6, "big")
    res, ck, ik, ak = t.f2345(r)
    _show({"topc": topc_b, "f1": t.f1(r, sb, a), "f1star": t.f1star(r, sb, a), "f2": res,
           "f3": ck, "f4": ik, "f5": ak, "f5star": t.f5star(r), "autn": t.vector(r, s, a).autn},
          as_json, "TUAK")


@app.command("opc")
@_errors
def opc_cmd(
    k: str = typer.Option(..., "--k", help="K (32 hex digits)."),
    op: str = typer.Option(..., "--op", help="OP (32 hex digits)."),
    as_json: bool = JsonOpt,
) -> None:
    """OPc = OP xor E_K(OP) (TS 35.206 §4.1)."""
    value = derive_opc(_hex("--k", k, (16,)), _hex("--op", op, (16,)))
    if as_json:
        print_json({"opc": value.hex()})
    else:
        console.print(value.hex().upper(), markup=False)


@app.command("kcv")
@_errors
def kcv_cmd(
    key: str = typer.Option(..., "--key", help="AES key (32, 48 or 64 hex digits)."),
    as_json: bool = JsonOpt,
) -> None:
    """Key check values of an AES key: AES-CMAC KCV and the legacy AES-ECB KCV."""
    raw = _hex("--key", key, (16, 24, 32))
    if as_json:
        print_json({"kcv": kcv(raw).hex(), "legacy_kcv": legacy_kcv(raw).hex()})
    else:
        console.print(_kcv_line("key", raw), markup=False)


@app.command("resync")
@_errors
def resync(
    k: str = typer.Option(..., "--k", help="K (32 hex digits)."),
    opc: str = typer.Option(..., "--opc", help="OPc (32 hex digits)."),
    rand: str = typer.Option(..., "--rand", help="The RAND the AUTS answers (32 hex digits)."),
    auts: str = typer.Option(..., "--auts", help="AUTS from the USIM (28 hex digits)."),
    as_json: bool = JsonOpt,
) -> None:
    """Milenage resynchronisation (TS 33.102 §6.3.5): verify MAC-S and print SQN_MS."""
    m = Milenage(_hex("--k", k, (16,)), _hex("--opc", opc, (16,)))
    sqn = m.resync(_hex("--rand", rand, (16,)), _hex("--auts", auts, (14,)))
    if as_json:
        print_json({"sqn_ms": f"{sqn:012x}"})
    else:
        console.print(f"SQN_MS {sqn:012X}", markup=False)


# --- a stored SIM ----------------------------------------------------------------------------


@app.command("vector")
@_errors
def vector_cmd(
    iccid: str = typer.Argument(..., help="ICCID of a SIM in the inventory (with keys)."),
    count: int = typer.Option(1, "--count", "-n", min=1, max=100, help="How many vectors."),
    rand: str | None = typer.Option(None, "--rand", help="RAND (32 hex digits) for every "
                                    "vector; random by default."),
    sqn: str | None = typer.Option(None, "--sqn", help="First SQN (up to 12 hex digits); "
                                   "default: the SIM's next SQNs from the store."),
    auts: str | None = typer.Option(None, "--auts", help="AUTS the card answered (28 hex "
                                    "digits): resynchronise the stored SQN first (one vector)."),
    auts_rand: str | None = typer.Option(None, "--auts-rand", help="The RAND of the challenge "
                                         "the AUTS answers (32 hex digits); with --auts."),
    as_json: bool = JsonOpt,
) -> None:
    """Milenage vectors (RAND, AUTN, XRES, CK, IK) for a stored SIM, computed inside the HSM.

    SQN = SEQ || 5-bit IND (TS 33.102 Annex C). By default each vector takes the SIM's next SEQ
    from the store and the next IND. --sqn S gives vectors at S + (i << 5) and raises the stored
    SEQ to theirs. --auts/--auts-rand resynchronise with a card's answer (TS 33.102 §6.3.5): the
    HSM checks AUTS, the store takes the card's SEQ, and one vector the card accepts is printed."""
    from simcore import keys, sqn_store
    from simcore.errors import SimsmithError
    from tools.common import actor, engine

    if (auts is None) != (auts_rand is None):
        fail("--auts and --auts-rand go together")
    if auts is not None and (sqn is not None or rand is not None or count != 1):
        fail("--auts makes one vector at the resynchronised SQN: no --sqn, --rand or --count")
    r = _hex("--rand", rand, (16,)) if rand is not None else None
    first = _sqn(sqn) if sqn is not None else None
    try:
        eng = engine()
        k = keys.load_keys(eng, iccid)
        hsm = open_hsm()
        if auts is not None and auts_rand is not None:
            pairs = [sqn_store.issue_resync_vector(
                eng, hsm, k, _hex("--auts-rand", auts_rand, (16,)), _hex("--auts", auts, (14,)),
                actor=actor())]
        else:
            pairs = sqn_store.issue_vectors(eng, hsm, k, count=count, sqn=first, rand=r)
        state = sqn_store.sqn_state(eng, k.iccid)
    except SimsmithError as e:
        fail(str(e))
        return
    rows = [{"sqn": f"{s:012x}", "rand": v.rand.hex(), "autn": v.autn.hex(),
             "xres": v.xres.hex(), "ck": v.ck.hex(), "ik": v.ik.hex()} for s, v in pairs]
    stored = None if state is None else {"seq": state.seq, "ind": state.ind}
    if as_json:
        print_json({"iccid": k.iccid, "backend": k.ki.backend, "vectors": rows,
                    "stored_sqn": stored})
        return
    print_table(f"SIM {k.iccid}: {len(rows)} Milenage vector(s) from the {k.ki.backend} HSM",
                ["#", "SQN", "RAND", "AUTN", "XRES", "CK", "IK"],
                [(i + 1, *(row[x].upper() for x in ("sqn", "rand", "autn", "xres", "ck", "ik")))
                 for i, row in enumerate(rows)])
    if state is not None:
        console.print(f"stored SQN: SEQ {state.seq}, IND {state.ind}", markup=False)


if __name__ == "__main__":  # pragma: no cover
    app()
    sys.exit(0)


@app.command("rewrap")
@_errors
def rewrap_cmd(
    page: int = typer.Option(1000, "--page", min=1, max=100_000,
                             help="References per transaction."),
    as_json: bool = JsonOpt,
) -> None:
    """Bring every stored key reference to the HSM's current blob format (docs/hsm.md "Blob
    format": v1 RFC 5649 blobs become v2). Keys are unwrapped and wrapped again inside the HSM;
    each page commits on its own (audited as keys.rewrap, counts only), so an interrupted run
    leaves every reference valid and is simply run again. Refs already current are unchanged."""
    from simcore import keys
    from simcore.errors import SimsmithError
    from tools.common import actor, engine

    try:
        result = keys.rewrap_keys(engine(), open_hsm(), actor=actor(), page=page)
    except SimsmithError as e:
        fail(str(e))
        return
    if as_json:
        print_json(result.as_dict())
        return
    console.print(f"rewrapped {result.rewrapped} of {result.references} stored key references",
                  markup=False)
