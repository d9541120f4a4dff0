"""Configuration from the environment (pydantic-settings). No config file is required.

Every setting is `SIMSMITH_<NAME>`: SIMSMITH_HOME (workspace, default ./.simsmith),
SIMSMITH_DATABASE_URL (default: SQLite file in the workspace), SIMSMITH_QUARANTINE_DAYS, the HSM's
(SIMSMITH_HSM_BACKEND, SIMSMITH_HSM_PASSPHRASE, SIMSMITH_PKCS11_MODULE/_TOKEN/_PIN/_SESSIONS), ...
The API adds its own (api.settings.ApiSettings, a subclass: one tree), and checks the whole of it
in production mode. Secrets are SecretStr (their repr hides them).
Settings are built by `get_settings()` when needed, never at import, so tests can swap them.
The SM-DP+'s identity for ES9+ (SIMSMITH_SMDP_*: address, OID, certificates, HSM key references,
trusted CIs) is read by simcore.smdp.identity; `simsmith pki sgp26-init` / `pki load` write it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEMO_SMDP_ADDRESS = "smdp.simsmith.test"


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
    suci_calculation: Literal["me", "usim"] = Field(
        default="me", description="Who computes the SUCI on the cards `card program` writes: "
        "the phone from EF.SUCI_Calc_Info (EF.UST 124) or the USIM itself on GET IDENTITY "
        "(124 and 125; sysmoISIM-SJA5). TS 31.102 §4.4.11")
    suci_routing_indicator: str = Field(
        default="0", description="Routing indicator (1-4 digits, TS 23.003 §2.2B) written to "
        "cards (EF.Routing_Indicator) and profiles; '0' when the UDM needs none")
    mode: Literal["dev", "production"] = Field(
        default="dev", description="dev (also labs and tests) or production; lab-only paths such "
        "as seeding an emulated card from the inventory are refused in production")

    smdp_address: str = Field(
        default=DEMO_SMDP_ADDRESS, description="SM-DP+ address (FQDN, or host:port in a lab): "
        "put into activation codes, checked in ES9+ requests and in CERT.DP.TLS")
    smdp_rsp_dir: Path | None = Field(
        default=None, description="Where the SM-DP+'s RSP certificates and its identity file "
        "(smdp.json: OID, HSM key references) live; default <home>/rsp")
    smdp_oid: str | None = Field(
        default=None, description="SM-DP+ OID; default: the registeredID of CERT.DPauth")
    smdp_dpauth_cert: Path | None = Field(default=None, description="CERT.DPauth.ECDSA (PEM)")
    smdp_dppb_cert: Path | None = Field(default=None, description="CERT.DPpb.ECDSA (PEM)")
    smdp_tls_cert: Path | None = Field(
        default=None, description="CERT.DP.TLS (PEM); its SAN must name the SM-DP+ address")
    smdp_dpauth_key: str | None = Field(
        default=None, description="SK.DPauth as an HSM key reference token (kr1.…)")
    smdp_dppb_key: str | None = Field(
        default=None, description="SK.DPpb as an HSM key reference token (kr1.…)")
    smdp_template: str = Field(
        default="usim-isim-milenage", description="esim template (name or .toml) the SM-DP+ "
        "personalises a downloaded profile with, unless its Profile Type has one of its own")
    smdp_profile_templates: str | None = Field(
        default=None, description="Templates by Profile Type (a batch's profile name): "
        "'type=template,type2=template2'")
    smdp_trusted_cis: str | None = Field(
        default=None, description="CI certificates the SM-DP+ trusts (PEM files, comma-separated)"
        "; default <rsp dir>/ci.pem")
    # ES2+ notifications this SM-DP+ sends (simcore.smdp.progress_notify).
    es2plus_notify_enabled: bool = Field(
        default=True, description="Run the HandleDownloadProgressInfo sender in `simsmith "
        "serve` (it also moves the notifier's outbox cursor, which outbox pruning waits for)")
    es2plus_notify_poll_seconds: float = Field(default=1.0, gt=0)
    es2plus_notify_max_attempts: int = Field(default=10, ge=1)
    es2plus_notify_backoff_seconds: float = Field(default=2.0, gt=0,
                                                  description="First retry delay")
    es2plus_notify_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    es2plus_notify_timeout_seconds: float = Field(default=10.0, gt=0,
                                                  description="Seconds per notification")

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'simsmith.db').resolve()}"


def get_settings() -> Settings:
    return Settings()
