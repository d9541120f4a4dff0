"""Configuration from the environment (pydantic-settings). No config file is required.

Every setting is `SIMSMITH_<NAME>`: SIMSMITH_HOME (workspace, default ./.simsmith),
SIMSMITH_DATABASE_URL (default: SQLite file in the workspace), SIMSMITH_QUARANTINE_DAYS, the HSM's
(SIMSMITH_HSM_BACKEND, SIMSMITH_HSM_PASSPHRASE, SIMSMITH_PKCS11_MODULE/_TOKEN/_PIN/_SESSIONS), ...
The API adds its own (api.settings.ApiSettings, a subclass: one tree), and checks the whole of it
in production mode. Secrets are SecretStr (their repr hides them).
Settings are built by `get_settings()` when needed, never at import, so tests can swap them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIMSMITH_", extra="ignore")

    home: Path = Field(default=Path(".simsmith"), description="Workspace directory")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite:///<home>/simsmith.db"
    )
    quarantine_days: int = Field(
        default=90, ge=0, description="Days an IMSI/MSISDN rests in quarantine before reuse"
    )
    hsm_backend: str = Field(default="soft", description="soft | pkcs11")
    hsm_passphrase: SecretStr | None = Field(
        default=None, description="Passphrase of a dev-mode soft HSM keystore (INSECURE)")
    pkcs11_module: str | None = Field(default=None, description="PKCS#11 module (.so) path")
    pkcs11_token: str | None = Field(default=None, description="PKCS#11 token label")
    pkcs11_pin: SecretStr | None = Field(default=None, description="PKCS#11 user PIN")
    pkcs11_sessions: str | None = Field(
        default=None, description="PKCS#11 session pool size per process (default 4); checked "
        "when the token is opened (simcore.hsm_access)")
    log_level: str | None = Field(
        default=None, description="Log level; default WARNING for the CLI, INFO for the server")
    log_json: bool = Field(default=False, description="Structured JSON logs instead of console")
    nats_url: str | None = Field(
        default=None, description="NATS server (nats://host:4222): outbox events are published to "
        "JetStream (simcore.nats_relay; `simsmith serve` runs the relay when set)")
    nats_stream: str = Field(default="SIMSMITH", pattern=r"^[A-Za-z0-9_-]{1,32}$",
                             description="JetStream stream, created if missing")
    nats_subject_prefix: str = Field(default="simsmith", pattern=r"^[A-Za-z0-9_-]{1,32}$",
                                     description="First subject token: <prefix>.<entity>.<event>")
    nats_poll_seconds: float = Field(default=0.2, gt=0, le=60,
                                     description="How often an idle relay looks for new events")
    actor: str = Field(default="cli", description="Who the audit log names for CLI actions")
    mode: Literal["dev", "production"] = Field(
        default="dev", description="dev (also labs and tests) or production; lab-only paths such "
        "as seeding an emulated card from the inventory are refused in production")

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'simsmith.db').resolve()}"


def get_settings() -> Settings:
    return Settings()
