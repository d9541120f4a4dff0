"""One settings tree (simcore.config.Settings, api.settings.ApiSettings): the HSM's variables
included, secrets hidden in reprs, and the production check covering all of it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from api.settings import ApiSettings
from simcore.config import get_settings

REAL = {"mode": "production", "smdp_address": "rsp.operator.example"}


def test_hsm_variables_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("SIMSMITH_HSM_BACKEND", "pkcs11"), ("SIMSMITH_PKCS11_MODULE", "/x.so"),
                        ("SIMSMITH_PKCS11_TOKEN", "t"), ("SIMSMITH_PKCS11_PIN", "987654"),
                        ("SIMSMITH_PKCS11_SESSIONS", "8"),
                        ("SIMSMITH_HSM_PASSPHRASE", "zq-phrase-zq")):
        monkeypatch.setenv(name, value)
    s = get_settings()
    assert (s.pkcs11_module, s.pkcs11_token, s.pkcs11_sessions) == ("/x.so", "t", "8")
    assert s.pkcs11_pin is not None and s.pkcs11_pin.get_secret_value() == "987654"
    assert "987654" not in repr(s) and "zq-phrase-zq" not in repr(s)


@pytest.mark.parametrize(("extra", "names"), [
    ({"hsm_passphrase": "demo"}, "SIMSMITH_HSM_PASSPHRASE"),
    ({"hsm_backend": "pkcs11", "pkcs11_module": "/x.so", "pkcs11_token": "t"},
     "SIMSMITH_PKCS11_PIN"),
    ({"hsm_backend": "pkcs11", "pkcs11_module": "/x.so", "pkcs11_token": "t",
      "pkcs11_pin": "1", "pkcs11_sessions": "0"}, "SIMSMITH_PKCS11_SESSIONS"),
    ({"hsm_backend": "hardware"}, "SIMSMITH_HSM_BACKEND"),
])
def test_production_refuses_hsm_settings_that_cannot_serve(
        tmp_path: Path, extra: dict[str, str], names: str) -> None:
    with pytest.raises(ValidationError, match=names):
        ApiSettings(home=tmp_path, **REAL, **extra)  # type: ignore[arg-type]
    ApiSettings(home=tmp_path, **extra)  # type: ignore[arg-type]  # dev mode lets them be


def test_production_accepts_a_complete_pkcs11_configuration(tmp_path: Path) -> None:
    s = ApiSettings(home=tmp_path, hsm_backend="pkcs11", pkcs11_module="/x.so",  # type: ignore[arg-type]
                    pkcs11_token="t", pkcs11_pin="1234", pkcs11_sessions="4", **REAL)
    assert s.mode == "production" and "1234" not in repr(s)


def test_smdp_and_es2plus_variables_are_one_tree(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    """Issue 15 item 5 (the ES2+ part): SmdpSettings, Es2PlusEndpointSettings and
    Es2PlusAccessSettings are views of the one tree, and every old variable name still works."""
    from simcore.smdp.access import Es2PlusAccessSettings
    from simcore.smdp.es2plus import Es2PlusEndpointSettings
    from simcore.smdp.es2plus_port import SmdpSettings

    env = {"SIMSMITH_MODE": "production", "SIMSMITH_SMDP_MODE": "es2plus",
           "SIMSMITH_SMDP_URL": "https://es2.vendor.example:8443",
           "SIMSMITH_SMDP_CERT": "/etc/c.pem", "SIMSMITH_SMDP_KEY": "/etc/c.key",
           "SIMSMITH_SMDP_CA": "/etc/ca.pem", "SIMSMITH_SMDP_REQUESTER_ID": "1.3.6.1.4.1.9.1",
           "SIMSMITH_SMDP_TIMEOUT": "7.5", "SIMSMITH_SMDP_ADDRESS": "rsp.vendor.example",
           "SIMSMITH_ES2PLUS_ACCESS": "/etc/access.toml",
           "SIMSMITH_ES2PLUS_CREDENTIALS": "proxy=zq-cred-zq",
           "SIMSMITH_ES2PLUS_REQUESTERS": "crm=1.2|1.3",
           "SIMSMITH_ES2PLUS_CALL_WINDOW_HOURS": "2",
           "SIMSMITH_ES2PLUS_NOTIFY_MAX_ATTEMPTS": "4"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SIMSMITH_HOME", str(tmp_path))
    s = get_settings()
    assert (s.mode, s.smdp_mode, s.smdp_url, s.smdp_timeout, s.es2plus_call_window_hours,
            s.es2plus_notify_max_attempts) == (
        "production", "es2plus", "https://es2.vendor.example:8443", 7.5, 2.0, 4)
    assert "zq-cred-zq" not in repr(s)
    smdp = SmdpSettings.from_settings()
    assert (smdp.url, str(smdp.cert), str(smdp.key), str(smdp.ca), smdp.requester_id,
            smdp.timeout, smdp.address) == (
        "https://es2.vendor.example:8443", "/etc/c.pem", "/etc/c.key", "/etc/ca.pem",
        "1.3.6.1.4.1.9.1", 7.5, "rsp.vendor.example")
    endpoint = Es2PlusEndpointSettings.from_settings(s)
    assert endpoint.credential_map() == {"proxy": "zq-cred-zq"}
    assert endpoint.requester_map() == {"crm": frozenset({"1.2", "1.3"})}
    assert endpoint.call_window.total_seconds() == 7200
    access = Es2PlusAccessSettings.from_settings(s)
    assert (str(access.access), access.allow_plain_http) == ("/etc/access.toml", False)
    api = ApiSettings()  # the API's settings are the same tree
    assert (api.smdp_address, api.smdp_mode, api.mode) == (
        "rsp.vendor.example", "es2plus", "production")
    # Without SIMSMITH_SMDP_ADDRESS the external SM-DP+'s address is its answer's / URL host's.
    monkeypatch.delenv("SIMSMITH_SMDP_ADDRESS")
    assert SmdpSettings.from_settings().address is None


@pytest.mark.parametrize("flag", ["SIMSMITH_ES2PLUS_ALLOW_PLAIN_HTTP",
                                  "SIMSMITH_SMDP_ALLOW_LAB_ADDRESS"])
def test_production_refuses_the_es2plus_lab_flags(tmp_path: Path, flag: str) -> None:
    name = flag.removeprefix("SIMSMITH_").lower()
    with pytest.raises(ValidationError, match=flag):
        ApiSettings(home=tmp_path, **REAL, **{name: True})  # type: ignore[arg-type]
    ApiSettings(home=tmp_path, **{name: True})  # type: ignore[arg-type]  # dev mode: a lab


def test_emulated_card_adm1_is_a_hidden_setting_of_eight_digits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIMSMITH_EMULATE_ADM1", raising=False)
    assert get_settings().emulate_adm1.get_secret_value() == "12345678"  # the lab default
    monkeypatch.setenv("SIMSMITH_EMULATE_ADM1", "88776655")
    s = get_settings()
    assert s.emulate_adm1.get_secret_value() == "88776655" and "88776655" not in repr(s)
    monkeypatch.setenv("SIMSMITH_EMULATE_ADM1", "1234")
    with pytest.raises(ValidationError, match="emulate_adm1"):
        get_settings()
