"""`simsmith esim`: inspect SAIP profile packages, build them for stored SIMs (keys through the
HSM), build and parse activation codes, QR codes.

Each command is a thin layer over esim/; secrets (Ki, OPc, PINs, PUKs, ADM, OTA keys) are masked
unless --show-secrets is given.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from esim.activation_code import ActivationCode, generate_matching_id
from esim.build import get_compiled
from esim.errors import ActivationCodeError, EsimError
from esim.qr import ios_install_link, qr_png, qr_svg
from esim.saip import ProfilePackage
from esim.saip.element import masked
from esim.saip.validate import validate
from esim.template import builtin_template_names
from simcore.errors import InvalidInput, SimsmithError
from tools.common import (
    JsonOpt,
    actor,
    console,
    engine,
    err_console,
    fail,
    handle_errors,
    print_json,
    print_table,
)
from tools.hsm_cli import hsm_errors, open_hsm

app = typer.Typer(no_args_is_help=True)
template_app = typer.Typer(no_args_is_help=True, help="Profile templates: list, show.")
app.add_typer(template_app, name="template")


def _summary(package: ProfilePackage) -> dict[str, Any]:
    def attempt(fn: Any) -> Any:
        try:
            return fn()
        except (EsimError, KeyError):
            return None

    return {
        "iccid": attempt(lambda: package.iccid),
        "ef_iccid": attempt(lambda: package.ef_iccid),
        "imsi": attempt(lambda: package.imsis),
        "algorithms": package.algorithms,
        "services": attempt(lambda: package.services),
        "profile_type": attempt(lambda: package.one("header").value.get("profileType")),
    }


@app.command("inspect")
def inspect(
    path: Path = typer.Argument(..., help="Profile package, DER (.der)."),
    as_json: bool = JsonOpt,
    show_secrets: bool = typer.Option(False, "--show-secrets",
                                      help="Show keys, PINs and PUKs instead of '***'."),
) -> None:
    """List a package's profile elements, ICCID, IMSI, AKA algorithm and services."""
    try:
        data = path.read_bytes()
    except OSError as e:
        fail(f"{path}: {e.strerror}")
    try:
        package = ProfilePackage.from_der(data)
    except EsimError as e:
        fail(f"{path}: {e}")
    try:
        validate(package.elements)
        problem = None
    except EsimError as e:
        problem = str(e)
    summary = _summary(package) | {"size": len(data), "valid": problem is None,
                                   "problem": problem}
    if as_json:
        summary["elements"] = [{"kind": pe.kind, "identification": pe.identification,
                                "value": masked(pe.value, show_secrets)}
                               for pe in package.elements]
        print_json(summary)
        return
    print_table(f"{path.name}: {len(package.elements)} profile elements, {len(data)} bytes",
                ["#", "element", "identification", "mandated"],
                [(i + 1, e.kind, e.identification, "yes" if e.mandated else "")
                 for i, e in enumerate(package.elements)])
    for label, key in (("ICCID", "iccid"), ("IMSI", "imsi"), ("algorithm", "algorithms"),
                       ("services", "services"), ("profile type", "profile_type")):
        value = summary[key]
        shown = ", ".join(value) if isinstance(value, list) else value
        console.print(f"{label}: {shown}", markup=False)
    if show_secrets:
        for aka in package.all("akaParameter"):
            choice, algo = aka.value["algoConfiguration"]
            if choice == "algoParameter":
                console.print(f"akaParameter#{aka.identification}: key {algo['key'].hex().upper()} "
                              f"opc {algo['opc'].hex().upper()}", markup=False)
    else:
        console.print("keys, PINs, PUKs: masked (--show-secrets to show)", markup=False)
    if problem:
        console.print(f"validation: {problem}", markup=False)


def _code_json(ac: ActivationCode) -> dict[str, Any]:
    return {"activation_code": ac.to_string(), "lpa_uri": ac.to_uri(),
            "smdp_address": ac.smdp_address, "matching_id": ac.matching_id,
            "smdp_oid": ac.smdp_oid, "confirmation_code_required": ac.confirmation_code_required,
            "ios_install_link": ios_install_link(ac)}


@app.command("code")
def code(
    smdp: str | None = typer.Option(None, "--smdp", help="SM-DP+ address (FQDN)."),
    matching_id: str | None = typer.Option(
        None, "--matching-id", help="Matching ID (0-9, A-Z, '-'); generated if omitted."),
    oid: str | None = typer.Option(None, "--oid", help="SM-DP+ OID, dotted decimal."),
    cc_required: bool = typer.Option(False, "--cc-required",
                                     help="A confirmation code is required."),
    parse: str | None = typer.Option(None, "--parse",
                                     help="Parse this activation code (or LPA: URI) instead."),
    qr: Path | None = typer.Option(None, "--qr", help="Write the QR code to FILE.png or .svg."),
    as_json: bool = JsonOpt,
) -> None:
    """Build an activation code (SGP.22 §4.1) with its QR code, or check one with --parse."""
    try:
        if parse is not None:
            if smdp or matching_id or oid or cc_required:
                fail("--parse takes no --smdp, --matching-id, --oid or --cc-required", 2)
            ac = (ActivationCode.from_uri(parse) if parse.startswith("LPA:")
                  else ActivationCode.parse(parse))
        else:
            if smdp is None:
                fail("--smdp is required (or --parse)", 2)
                return
            ac = ActivationCode(smdp, matching_id or generate_matching_id(), oid, cc_required)
    except ActivationCodeError as e:
        if as_json:
            print_json({"valid": False, "field": e.field, "position": e.position,
                        "error": str(e)})
            raise typer.Exit(1) from None
        fail(f"invalid activation code: {e}")
        return
    if qr is not None:
        suffix = qr.suffix.lower()
        if suffix not in (".png", ".svg"):
            fail(f"--qr {qr}: the file name must end in .png or .svg", 2)
        try:
            if suffix == ".png":
                qr.write_bytes(qr_png(ac))
            else:
                qr.write_text(qr_svg(ac), encoding="utf-8")
        except OSError as e:
            fail(f"{qr}: {e.strerror}")
    if as_json:
        print_json({"valid": True, **_code_json(ac)} | ({"qr": str(qr)} if qr else {}))
        return
    for label, value in _code_json(ac).items():
        console.print(f"{label}: {value}", markup=False, soft_wrap=True)
    if qr is not None:
        console.print(f"qr: {qr}", markup=False)


@template_app.command("list")
def template_list(as_json: bool = JsonOpt) -> None:
    """The built-in profile templates."""
    names = builtin_template_names()
    if as_json:
        print_json(names)
        return
    for name in names:
        console.print(name, markup=False)


@template_app.command("show")
def template_show(
    template: str = typer.Argument(..., help="Built-in template name or a template .toml file."),
    as_json: bool = JsonOpt,
) -> None:
    """Compile a template and show its personalised fields and key slots (offsets, lengths)."""
    try:
        compiled = get_compiled(Path(template) if template.endswith(".toml") else template)
    except EsimError as e:
        fail(str(e))
        return
    t = compiled.template
    fields = [{"parameter": f.param, "where": f.where, "offset": o, "length": f.length,
               "written_by": "hsm" if f.encode is None else "esim"}
              for f, o in zip(compiled.fields, compiled.offsets, strict=True)]
    if as_json:
        print_json({"name": t.name, "algorithm": t.algorithm.name, "package_bytes":
                    len(compiled.der), "parameters": list(t.parameters), "fields": fields})
        return
    print_table(f"template {t.name}: {t.algorithm.name}, {len(compiled.der)} bytes",
                ["parameter", "where", "offset", "length", "written by"],
                [tuple(f.values()) for f in fields])


# --- packages for stored SIMs (keys through the HSM) -------------------------------------------


def _options(**given: Any) -> Any:
    """simcore.esim_build.profile_options; a bad option is one line naming it, exit 2."""
    from simcore.esim_build import profile_options

    try:
        return profile_options(**given)
    except InvalidInput as e:
        if e.field == "msisdn" and given.get("with_msisdn"):
            fail("--msisdn and --with-msisdn exclude each other", 2)
        fail(f"--{e.field.replace('_', '-')}: {e.reason}", 2)


def _compiled(template: str, options: Any) -> Any:
    """The compiled template; an option it would ignore is one line naming it, exit 2."""
    from simcore.esim_build import check_options_fit, compiled_template

    try:
        compiled = compiled_template(template)
    except InvalidInput as e:
        fail(f"--template {template}: {e.reason}")
    try:
        check_options_fit(compiled, options)
    except InvalidInput as e:
        fail(f"--{e.field.replace('_', '-')}: {e.reason}", 2)
    return compiled


TemplateOpt = typer.Option(..., "--template", "-t",
                           help="Built-in template name (see `template list`) or a .toml file.")
EhplmnOpt = typer.Option(
    None, "--ehplmn", metavar="MCCMNC",
    help="Equivalent HPLMN for EF.EHPLMN (5 or 6 digits); repeat or separate with commas. "
         "Default: the template's (none for the built-in ones).")
WithMsisdnOpt = typer.Option(
    False, "--with-msisdn",
    help="Write the SIM's MSISDN from the inventory into EF.MSISDN record 1.")
TargetOpt = typer.Option(
    ..., "--target", metavar="NAME",
    help="HSM export target (the receiving SM-DP+'s key, `hsm kek add NAME --purpose export`) "
         "the packages are for: each file is encrypted to it (docs/esim.md \"Package files "
         "are exports\"). Every package is audited per SIM with this target.")
ClearOpt = typer.Option(
    False, "--clear",
    help="Write clear packages (Ki, OPc, PINs, PUKs, ADM1 readable by whoever gets the file); "
         "only to a target marked --insecure-clear, audited as clear.")
ImsDomainOpt = typer.Option(
    None, "--ims-domain", metavar="DOMAIN",
    help="ISIM EF.DOMAIN (home network domain). Default: the template's, else "
         "ims.mnc<MNC>.mcc<MCC>.3gppnetwork.org from the IMSI (TS 23.003 §13.2).")
RoutingIndicatorOpt = typer.Option(
    None, "--routing-indicator", metavar="DIGITS",
    help="5G routing indicator for EF.Routing_Indicator (1-4 digits, TS 23.003 §2.2B). "
         "Default: SIMSMITH_SUCI_ROUTING_INDICATOR (0). EF.SUCI_Calc_Info always comes from "
         "the SUCI key registry (`suci key list`).")


@app.command("build")
@handle_errors
@hsm_errors
def build(
    template: str = TemplateOpt,
    iccid: str = typer.Option(..., "--iccid", help="ICCID of a SIM in the inventory."),
    out: Path = typer.Option(..., "--output", "-o", help="Package file to write (DER)."),
    ehplmn: list[str] | None = EhplmnOpt,
    msisdn: str | None = typer.Option(
        None, "--msisdn", metavar="NUMBER",
        help="MSISDN for EF.MSISDN record 1 ('+' and up to 20 digits, or national digits)."),
    with_msisdn: bool = WithMsisdnOpt,
    impi: str | None = typer.Option(
        None, "--impi", metavar="NAI",
        help="ISIM private identity (EF.IMPI). Default: <IMSI>@ims.mnc<MNC>.mcc<MCC>."
             "3gppnetwork.org (TS 23.003 §13.3)."),
    impu: list[str] | None = typer.Option(
        None, "--impu", metavar="URI",
        help="ISIM public identity (EF.IMPU, one record each; sip:, sips: or tel:); repeat for "
             "more. Default: sip:<IMSI>@ims.mnc<MNC>.mcc<MCC>.3gppnetwork.org (TS 23.003 "
             "§13.4B)."),
    ims_domain: str | None = ImsDomainOpt,
    routing_indicator: str | None = RoutingIndicatorOpt,
    target: str = TargetOpt,
    clear: bool = ClearOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Build a SIM's profile package for an SM-DP+: subscriber from the inventory, Ki/OPc, OTA
    keys and PIN/PUK/ADM written into it by the HSM, decoded and validated, then written
    (mode 0600) encrypted to --target, or clear with --clear; audited. ISIM identities are
    derived from the IMSI (MNC length: the template's EF.AD, checked against the inventory's
    IMSI range) unless given."""
    from simcore.esim_build import build_for_sim
    from simcore.esim_export import PackageWriter, package_target

    options = _options(ehplmn=ehplmn, msisdn=msisdn, with_msisdn=with_msisdn, impi=impi,
                       impu=impu, ims_domain=ims_domain, routing_indicator=routing_indicator)
    compiled = _compiled(template, options)
    eng = engine()
    hsm = open_hsm()
    dest = package_target(hsm, target, clear=clear)
    built = build_for_sim(eng, hsm, compiled, iccid, options)
    writer = PackageWriter(eng, hsm, dest, template=built.template, actor=actor(),
                           output=str(out))
    try:
        writer.write_one(out, built.iccid, built.der)
    except OSError as e:
        fail(f"{out}: {e.strerror}")
    info = {"iccid": built.iccid, "imsi": built.imsi, "template": built.template,
            "bytes": writer.summary.bytes, "package_bytes": len(built.der), "output": str(out),
            "valid": True, **writer.summary.as_dict()}
    del info["packages"]
    if as_json:
        print_json(info)
    else:
        form = "CLEAR" if dest.clear else f"encrypted to {dest.name} (KCV {dest.kek_kcv})"
        console.print(f"wrote {out}: {writer.summary.bytes} bytes, {form}, template "
                      f"{built.template}, ICCID {built.iccid}, IMSI {built.imsi} (decoded and "
                      "validated; audited)", markup=False)


@app.command("build-batch")
@handle_errors
@hsm_errors
def build_batch(
    template: str = TemplateOpt,
    batch: str = typer.Option(..., "--batch", help="Batch name: every SIM of it."),
    out_dir: Path = typer.Option(..., "--output", "-o", help="Directory for <ICCID>.der files."),
    verify_every: int = typer.Option(1000, "--verify-every", min=0,
                                     help="Decode and validate every Nth package (0: none)."),
    ehplmn: list[str] | None = EhplmnOpt,
    with_msisdn: bool = typer.Option(
        False, "--with-msisdn",
        help="Write each SIM's MSISDN from the inventory into EF.MSISDN record 1 (SIMs "
             "without one get an empty record)."),
    ims_domain: str | None = ImsDomainOpt,
    routing_indicator: str | None = RoutingIndicatorOpt,
    target: str = TargetOpt,
    clear: bool = ClearOpt,
    workers: int = typer.Option(
        os.cpu_count() or 1, "--workers", min=1,
        help="Processes building and writing packages (default: one per core; the pkcs11 "
             "backend uses one)."),
    as_json: bool = JsonOpt,
) -> None:
    """Build the profile packages of a whole batch into a directory (<ICCID>.der.sspe
    encrypted to --target, or <ICCID>.der with --clear; mode 0600), each audited, with a
    progress bar. ISIM identities are derived from each IMSI (TS 23.003 §13)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from simcore import esim_build
    from simcore.esim_export import export_batch, package_target

    options = _options(ehplmn=ehplmn, with_msisdn=with_msisdn, ims_domain=ims_domain,
                       routing_indicator=routing_indicator)
    compiled = _compiled(template, options)
    eng = engine()
    total = esim_build.batch_size(eng, batch)
    hsm = open_hsm()
    dest = package_target(hsm, target, clear=clear)
    done = [0]

    def advance(n: int) -> None:
        done[0] += n
        progress.advance(task, n)

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=err_console,
                  disable=as_json) as progress:
        task = progress.add_task(f"batch {batch}: {compiled.template.name}", total=total)
        try:
            summary = export_batch(eng, hsm, compiled, batch, dest, out_dir, options=options,
                                   actor=actor(), verify_every=verify_every, workers=workers,
                                   progress=advance)
        except SimsmithError as e:
            fail(f"batch {batch}, after {done[0]} packages: {e}")
            return
        except OSError as e:
            fail(f"{out_dir}: {e.strerror}")
            return
    info = {"batch": batch, "template": compiled.template.name, "output": str(out_dir),
            "verified_every": verify_every, **summary.as_dict()}
    if as_json:
        print_json(info)
    else:
        form = "CLEAR" if dest.clear else f"encrypted to {dest.name} (KCV {dest.kek_kcv})"
        console.print(f"wrote {summary.packages} packages ({summary.bytes} bytes, {form}) to "
                      f"{out_dir}; audited per SIM", markup=False)
