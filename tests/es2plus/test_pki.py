"""The development PKI (esim.pki) and `simsmith pki dev-init`."""

from __future__ import annotations

import json
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from typer.testing import CliRunner

from esim.pki import PkiError, certificate_identity, dev_init
from tools.cli import app


def test_dev_init_writes_a_consistent_set(tmp_path: Path) -> None:
    pki = dev_init(tmp_path / "pki")
    ca = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    server = x509.load_pem_x509_certificate(pki.server_cert.read_bytes())
    client = x509.load_pem_x509_certificate(pki.client_cert.read_bytes())
    for cert in (server, client):
        cert.verify_directly_issued_by(ca)
    assert certificate_identity(client) == "simsmith-operator"
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    for key in (pki.ca_key, pki.server_key, pki.client_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    # Loadable as TLS contexts on both sides.
    srv = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
    srv.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    cli = ssl.create_default_context(cafile=str(pki.ca))
    cli.load_cert_chain(str(pki.client_cert), str(pki.client_key))


def test_dev_init_refuses_to_overwrite(tmp_path: Path) -> None:
    dev_init(tmp_path)
    with pytest.raises(PkiError, match="already exist"):
        dev_init(tmp_path)
    dev_init(tmp_path, force=True)


def test_cli_dev_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMSMITH_HOME", str(tmp_path))
    r = CliRunner().invoke(app, ["pki", "dev-init", "--json", "--client-name", "op-1"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["directory"] == str(tmp_path / "pki")
    client = x509.load_pem_x509_certificate((tmp_path / "pki" / "client.pem").read_bytes())
    assert certificate_identity(client) == "op-1"
    assert "PRIVATE KEY" not in r.output
    again = CliRunner().invoke(app, ["pki", "dev-init"])
    assert again.exit_code == 1 and "already exist" in again.output
