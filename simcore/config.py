"""Configuration from the environment (pydantic-settings). No config file is required.

Every setting is `SIMSMITH_<NAME>`: SIMSMITH_HOME (workspace, default ./.simsmith),
SIMSMITH_DATABASE_URL (default: SQLite file in the workspace), SIMSMITH_QUARANTINE_DAYS, ...
Settings are built by `get_settings()` when needed, never at import, so tests can swap them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
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
    log_level: str | None = Field(
        default=None, description="Log level; default WARNING for the CLI, INFO for the server")
    log_json: bool = Field(default=False, description="Structured JSON logs instead of console")
    actor: str = Field(default="cli", description="Who the audit log names for CLI actions")

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'simsmith.db').resolve()}"


def get_settings() -> Settings:
    return Settings()
