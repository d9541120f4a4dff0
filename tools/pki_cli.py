"""`simsmith pki`: the development PKI for ES2+ mutual TLS (esim.pki), and the SM-DP+'s RSP
certificates for ES9+ (SGP.22 §4.5.2, simcore.smdp.rsp_pki): `sgp26-init` (an SGP.26-style lab),
`csr` and `load` (production certificates for HSM-held keys), `show`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from esim.pki import DEFAULT_CLIENT, DEFAULT_HOSTS, dev_init
from tools.common import JsonOpt, console, handle_errors, print_json, settings

app = typer.Typer(no_args_is_help=True)


@app.command("dev-init")
@handle_errors
def dev_init_cmd(
    directory: Path | None = typer.Option(
        None, "--dir", help="Where to write (default $SIMSMITH_HOME/pki)."),
    host: list[str] = typer.Option(
        list(DEFAULT_HOSTS), "--host", help="Server certificate name (repeatable)."),
    client_name: str = typer.Option(
        DEFAULT_CLIENT, "--client-name",
        help="Client certificate CN: the ES2+ functionRequesterIdentifier it speaks for."),
    force: bool = typer.Option(False, "--force", help="Replace an existing development PKI."),
    as_json: bool = JsonOpt,
) -> None:
    """Create a CA, a server and a client certificate (with keys) for ES2+ over mutual TLS.
    Development only: the keys are written unencrypted (mode 0600)."""
    target = directory or settings().home / "pki"
    pki = dev_init(target, hosts=host, client_name=client_name, force=force)
    files = {p.stem + ("_key" if p.suffix == ".key" else ""): str(p) for p in pki.files()}
    if as_json:
        print_json({"directory": str(target), "files": files})
        return
    console.print(f"development PKI written to {target}:")
    for p in pki.files():
        console.print(f"  {p.name}")
    console.print("point simsmith at it: SIMSMITH_SMDP_CA, SIMSMITH_SMDP_CERT, SIMSMITH_SMDP_KEY "
                  "(see docs/es2plus.md)")


# --- the SM-DP+'s RSP certificates (SGP.22 §4.5.2; simcore.smdp.rsp_pki) ------------------------


def _hsm() -> object:
    from tools.hsm_cli import open_hsm

    return open_hsm()


def _print_facts(facts: dict[str, object]) -> None:
    console.print(f"SM-DP+ {facts['address']}  OID {facts['oid']}  ({facts['rsp_dir']})")
    keys = facts["keys"]
    assert isinstance(keys, dict)
    for role, ref in keys.items():
        console.print(f"  SK.{role}: {ref['key_type']} '{ref['label']}' in the {ref['backend']} "
                      "HSM")
    certs = facts["certificates"]
    assert isinstance(certs, dict)
    for role, cert in certs.items():
        console.print(f"  CERT.{role}: {cert['subject']}  issuer {cert['issuer']}  serial "
                      f"{cert['serial']}  until {cert['not_after']}  {', '.join(cert['roles'])}"
                      f"  {cert['curve']}"
                      + (f"  names {', '.join(cert['names'])}" if cert["names"] else ""))
    more = facts.get("more_credentials") or []
    assert isinstance(more, list)
    for entry in more:
        for role in ("dpauth", "dppb"):
            ref, cert = entry[f"{role}_key"], entry[role]
            console.print(f"  {entry['curve']} CERT.{role}: {cert['subject']}  issuer "
                          f"{cert['issuer']}  until {cert['not_after']}; SK.{role}: "
                          f"{ref['key_type']} '{ref['label']}' in the {ref['backend']} HSM")
    cis = facts["trusted_cis"]
    assert isinstance(cis, list)
    for ci in cis:
        console.print(f"  trusted CI: {ci['subject']}  ski {ci['ski']}  {ci['curve']}")


@app.command("sgp26-init")
@handle_errors
def sgp26_init_cmd(
    address: str = typer.Option(
        ..., "--address", help="The SM-DP+ address (FQDN, or host:port in a lab): goes into "
        "CERT.DP.TLS and activation codes."),
    oid: str = typer.Option("2.999.10", "--oid", help="The SM-DP+ OID (SAN registeredID)."),
    eid: list[str] = typer.Option(
        [], "--eid", help="Issue an eUICC certificate for this EID (repeatable; virtual "
        "eUICCs)."),
    directory: Path | None = typer.Option(
        None, "--dir", help="Where to write (default SIMSMITH_SMDP_RSP_DIR or "
        "$SIMSMITH_HOME/rsp)."),
    label: str = typer.Option("smdp", "--label", help="Label of the HSM keys."),
    force: bool = typer.Option(False, "--force", help="Replace an existing SM-DP+ identity."),
    brainpool: bool = typer.Option(
        False, "--brainpool", help="Also make a brainpoolP256r1 CI hierarchy (SGP.22 §2.6.7) in "
        "<dir>/brainpoolP256r1: its CI, EUM, eUICC certificates and a second CERT.DPauth / "
        "CERT.DPpb over brainpool keys in the HSM. The SM-DP+ then serves eUICCs of either "
        "CI; the virtual eUICC carries a chain in each."),
    as_json: bool = JsonOpt,
) -> None:
    """An SGP.26-style lab PKI: CI, EUM and eUICC certificates (keys as 0600 files: a lab CA),
    and CERT.DPauth / CERT.DPpb / CERT.DP.TLS for the SM-DP+, the DPauth and DPpb key pairs
    generated in the HSM (CSRs signed by the HSM keys, issued by the lab CI) — on NIST P-256,
    plus a brainpoolP256r1 hierarchy with --brainpool. Checked as the SM-DP+ will load it."""
    from simcore.smdp.identity import describe
    from simcore.smdp.rsp_pki import sgp26_init

    s = settings()
    hsm = _hsm()
    lab = sgp26_init(s, hsm, address=address, oid=oid, eids=eid, directory=directory,
                     label=label, force=force, brainpool=brainpool)
    shown = s.model_copy(update={"smdp_rsp_dir": lab.directory, "smdp_address": address})
    facts = describe(shown, hsm)
    facts["files"] = {k: str(v) for k, v in lab.files.items()}
    if as_json:
        print_json(facts)
        return
    console.print(f"SGP.26-style lab PKI written to {lab.directory}")
    _print_facts(facts)
    if "smdp_address" not in s.model_fields_set or s.smdp_address != address:
        console.print(f"set SIMSMITH_SMDP_ADDRESS={address} for the API's activation codes")


@app.command("csr")
@handle_errors
def csr_cmd(
    role: str = typer.Option(..., "--role", help="dpauth or dppb."),
    out: Path = typer.Option(..., "--out", help="Where to write the PKCS#10 request (PEM)."),
    common_name: str = typer.Option("simsmith SM-DP+", "--cn", help="Subject CN (the role is "
                                    "appended)."),
    organization: str = typer.Option(..., "--org", help="Subject O."),
    country: str | None = typer.Option(None, "--country", help="Subject C (2 letters)."),
    label: str = typer.Option("smdp", "--label", help="Label of the HSM key."),
    curve: str = typer.Option("secp256r1", "--curve", help="secp256r1 or brainpoolP256r1: the "
                              "curve of the CI that will issue the certificate."),
    as_json: bool = JsonOpt,
) -> None:
    """Production: a new DPauth or DPpb key pair in the HSM and its PKCS#10 request for the CI.
    Prints the key reference to give `pki load` with the certificate."""
    from simcore.smdp.rsp_pki import dp_csr

    settings()
    ref, csr = dp_csr(_hsm(), role, label=label, common_name=common_name,
                      organization=organization, country=country, curve=curve)
    from cryptography.hazmat.primitives.serialization import Encoding

    out.write_bytes(csr.public_bytes(Encoding.PEM))
    if as_json:
        print_json({"csr": str(out), "key": ref.to_token(), "key_type": ref.key_type.value,
                    "label": ref.owner})
        return
    console.print(f"request written to {out}; key in the HSM: {ref!r}")
    console.print(f"give it to `simsmith pki load --{role}-key {ref.to_token()}`")


@app.command("load")
@handle_errors
def load_cmd(
    address: str = typer.Option(..., "--address", help="The SM-DP+ address."),
    dpauth_cert: Path = typer.Option(..., "--dpauth-cert", help="CERT.DPauth.ECDSA (PEM)."),
    dppb_cert: Path = typer.Option(..., "--dppb-cert", help="CERT.DPpb.ECDSA (PEM)."),
    ci: list[Path] = typer.Option(..., "--ci", help="A trusted CI certificate (repeatable)."),
    tls_cert: Path | None = typer.Option(None, "--tls-cert", help="CERT.DP.TLS (PEM)."),
    dpauth_key: str | None = typer.Option(
        None, "--dpauth-key", help="SK.DPauth's HSM key reference (from `pki csr`)."),
    dppb_key: str | None = typer.Option(
        None, "--dppb-key", help="SK.DPpb's HSM key reference (from `pki csr`)."),
    dpauth_wrapped: Path | None = typer.Option(
        None, "--dpauth-wrapped", help="Import SK.DPauth: PKCS#8 wrapped under --transport "
        "(RFC 5649)."),
    dppb_wrapped: Path | None = typer.Option(
        None, "--dppb-wrapped", help="Import SK.DPpb: PKCS#8 wrapped under --transport."),
    dpauth_pkcs8: Path | None = typer.Option(
        None, "--dpauth-pkcs8", help="Import SK.DPauth from a password-encrypted PKCS#8 file "
        "(decrypted in host memory; passphrase from $SIMSMITH_PKCS8_PASSPHRASE or a prompt)."),
    dppb_pkcs8: Path | None = typer.Option(
        None, "--dppb-pkcs8", help="Import SK.DPpb from a password-encrypted PKCS#8 file."),
    transport: str | None = typer.Option(None, "--transport", help="Transport KEK of the "
                                         "wrapped keys."),
    oid: str | None = typer.Option(None, "--oid", help="SM-DP+ OID (default: CERT.DPauth's)."),
    label: str = typer.Option("smdp", "--label", help="Label of imported HSM keys."),
    directory: Path | None = typer.Option(None, "--dir", help="The rsp directory."),
    bp_dpauth_cert: Path | None = typer.Option(
        None, "--brainpool-dpauth-cert", help="A further CERT.DPauth from a brainpoolP256r1 CI "
        "(its CI among --ci), for eUICCs of that CI."),
    bp_dppb_cert: Path | None = typer.Option(
        None, "--brainpool-dppb-cert", help="The further set's CERT.DPpb."),
    bp_dpauth_key: str | None = typer.Option(
        None, "--brainpool-dpauth-key", help="Its SK.DPauth's HSM key reference (from `pki csr "
        "--curve brainpoolP256r1`)."),
    bp_dppb_key: str | None = typer.Option(
        None, "--brainpool-dppb-key", help="Its SK.DPpb's HSM key reference."),
    as_json: bool = JsonOpt,
) -> None:
    """Production certificates for HSM-held keys: each key given by reference or imported
    under a transport KEK; everything checked (chain to a CI, rspRole, key = certificate's,
    address in CERT.DP.TLS) before it replaces the SM-DP+'s identity. A second set from a
    brainpoolP256r1 CI (--brainpool-*: all four, keys by reference) serves eUICCs of that CI."""
    from hsm_sim.keyref import KeyRef, KeyType
    from simcore.errors import InvalidInput
    from simcore.smdp.identity import describe, load_identity
    from simcore.smdp.rsp_pki import FurtherSet, load_production

    s = settings()
    bp = (bp_dpauth_cert, bp_dppb_cert, bp_dpauth_key, bp_dppb_key)
    further = None
    if any(v is not None for v in bp):
        if any(v is None for v in bp):
            raise InvalidInput("brainpool", "an incomplete further set", expected=(
                "--brainpool-dpauth-cert, --brainpool-dppb-cert, --brainpool-dpauth-key and "
                "--brainpool-dppb-key together"))
        assert bp_dpauth_cert and bp_dppb_cert and bp_dpauth_key and bp_dppb_key
        further = FurtherSet(bp_dpauth_cert, bp_dppb_cert, KeyRef.from_token(bp_dpauth_key),
                             KeyRef.from_token(bp_dppb_key))
    hsm: Any = _hsm()
    refs: dict[str, KeyRef] = {}
    for role, token, wrapped, pkcs8, cert, key_type in (
            ("dpauth", dpauth_key, dpauth_wrapped, dpauth_pkcs8, dpauth_cert, KeyType.SK_DPAUTH),
            ("dppb", dppb_key, dppb_wrapped, dppb_pkcs8, dppb_cert, KeyType.SK_DPPB)):
        if [token, wrapped, pkcs8].count(None) != 2:
            raise InvalidInput(f"{role}_key", f"give --{role}-key, --{role}-wrapped or "
                               f"--{role}-pkcs8 (one)")
        if token is not None:
            refs[role] = KeyRef.from_token(token)
            continue
        if pkcs8 is not None:
            phrase = os.environ.get("SIMSMITH_PKCS8_PASSPHRASE") or typer.prompt(
                f"Passphrase of {pkcs8.name}", hide_input=True, err=True)
            refs[role], _ = hsm.ec_import_pkcs8(label, key_type, pkcs8.read_bytes(),
                                                phrase.encode(), public_key=cert.read_bytes())
            continue
        assert wrapped is not None
        if transport is None:
            raise InvalidInput("transport", "wrapped keys need --transport")
        refs[role], _ = hsm.ec_import(label, key_type, wrapped.read_bytes(), transport,
                                      public_key=cert.read_bytes())
    load_production(s, hsm, check=lambda st: load_identity(st, hsm), address=address,
                    dpauth_cert=dpauth_cert, dppb_cert=dppb_cert,
                    cis=ci, dpauth_key=refs["dpauth"], dppb_key=refs["dppb"],
                    tls_cert=tls_cert, oid=oid, directory=directory, further=further)
    shown = s.model_copy(update={"smdp_address": address, **(
        {"smdp_rsp_dir": directory} if directory else {})})
    facts = describe(shown, hsm)
    if as_json:
        print_json(facts)
        return
    console.print("SM-DP+ identity loaded")
    _print_facts(facts)


@app.command("show")
@handle_errors
def show_cmd(as_json: bool = JsonOpt) -> None:
    """The SM-DP+'s identity as ES9+ will use it, checked: address, OID, HSM keys,
    certificates (subject, issuer, serial, validity, rspRole, names), trusted CIs."""
    from simcore.smdp.identity import describe

    facts = describe(settings(), _hsm())
    if as_json:
        print_json(facts)
        return
    _print_facts(facts)
