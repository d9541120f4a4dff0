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
