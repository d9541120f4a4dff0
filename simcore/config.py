"""Configuration from the environment (pydantic-settings). No config file is required.

Every setting is `SIMSMITH_<NAME>`: SIMSMITH_HOME (workspace, default ./.simsmith),
SIMSMITH_DATABASE_URL (default: SQLite file in the workspace), SIMSMITH_QUARANTINE_DAYS, the HSM's
(SIMSMITH_HSM_BACKEND, SIMSMITH_HSM_PASSPHRASE, SIMSMITH_PKCS11_MODULE/_TOKEN/_PIN/_SESSIONS),
SIMSMITH_MODE, the SM-DP+'s (SIMSMITH_SMDP_*: simsmith's own and an external one), simsmith's
ES2+ endpoint's (SIMSMITH_ES2PLUS_*) and its notifier's (SIMSMITH_ES2PLUS_NOTIFY_*), ...
The API adds its own (api.settings.ApiSettings, a subclass: one tree), and checks the whole of it
in production mode. The SM-DP+ modules read theirs through small views built from this tree
(simcore.smdp.es2plus_port.SmdpSettings, simcore.smdp.es2plus.Es2PlusEndpointSettings,
simcore.smdp.access.Es2PlusAccessSettings: `.from_settings()`), so every variable is declared,
defaulted and documented here once. Secrets are SecretStr (their repr hides them).
Settings are built by `get_settings()` when needed, never at import, so tests can swap them.
The SM-DP+'s identity for ES9+ (SIMSMITH_SMDP_*: address, OID, certificates, HSM key references,
trusted CIs) is read by simcore.smdp.identity; `simsmith pki sgp26-init` / `pki load` write it.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEMO_SMDP_ADDRESS = "smdp.simsmith.test"
# The development PKI's client certificate CN (esim.pki.DEFAULT_CLIENT), not imported: this
# module is read by every command and stays free of the crypto stack.
DEFAULT_REQUESTER_ID = "simsmith-operator"
DEFAULT_CALL_WINDOW_HOURS = 24.0


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
    hlr: Literal["embedded", "osmo-hlr"] | None = Field(
        default=None, description="The HLR the workflows provision (simcore.ports): `embedded` "
        "(a subscriber register in simsmith's own store: IMSI, MSISDN, CS/PS access, K/OPc as "
        "HSM references; simcore.ports.embedded_hlr) or `osmo-hlr` (over CTRL at "
        "SIMSMITH_HLR_HOST). Unset: osmo-hlr when SIMSMITH_HLR_HOST is set, else embedded — "
        "in production mode only with SIMSMITH_HLR_ALLOW_EMBEDDED (else no HLR: activations "
        "fail and are compensated; SIMSMITH_HLR=embedded without it is refused at start)")
    hlr_host: str | None = Field(
        default=None, description="osmo-hlr's CTRL address (port SIMSMITH_HLR_CTRL_PORT, keys "
        "exported to the HSM target SIMSMITH_HLR_TARGET; simcore.workflows.runtime)")
    hlr_allow_embedded: bool = Field(
        default=False, description="Allow the embedded HLR in production mode. No network "
        "element reaches it (no MAP, GSUP or Diameter): an activation there reaches no network; "
        "set it only where something else serves the register (or for a staging system)")
    suci_calculation: Literal["me", "usim"] = Field(
        default="me", description="Who computes the SUCI on the cards `card program` writes: "
        "the phone from EF.SUCI_Calc_Info (EF.UST 124) or the USIM itself on GET IDENTITY "
        "(124 and 125; sysmoISIM-SJA5). TS 31.102 §4.4.11")
    suci_routing_indicator: str = Field(
        default="0", description="Routing indicator (1-4 digits, TS 23.003 §2.2B) written to "
        "cards (EF.Routing_Indicator) and profiles; '0' when the UDM needs none")
    emulate_adm1: SecretStr = Field(
        default=SecretStr("12345678"), min_length=8, max_length=8,
        description="ADM1 of a new `simsmith card emulate` card without an inventory record "
        "(lab only; the state file keeps a verifier, never the code)")
    mode: Literal["dev", "production"] = Field(
        default="dev", description="dev (also labs and tests) or production; lab-only paths such "
        "as seeding an emulated card from the inventory are refused in production")

    smdp_address: str = Field(
        default=DEMO_SMDP_ADDRESS, description="SM-DP+ address (FQDN, or host:port in a lab): "
        "put into activation codes, checked in ES9+ requests and in CERT.DP.TLS; with "
        "SIMSMITH_SMDP_URL the external SM-DP+'s, used when its answer names none (default the "
        "URL's host)")
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
    smdp_order_validity: timedelta | None = Field(
        default=None, description="How long a released download order stays valid "
        "(SGP.22 §3.1.3: refused at ES9+ with 8.8.5 / 4.10 after it, its profile moved to error "
        "by the sweeper): '7d', '48h', '90m', '3600s' or ISO 8601 ('P7D'); unset or 'none': "
        "never expires. Set when the order is released (ConfirmOrder with releaseFlag, "
        "ReleaseProfile, an in-process order)")
    # How orders reach simsmith's own SM-DP+ when no external one is named (docs/es2plus.md).
    smdp_mode: Literal["in-process", "es2plus"] = Field(
        default="in-process", description="The SM-DP+ when SIMSMITH_SMDP_URL names no external "
        "one: `es2plus` runs simsmith's own ES2+ endpoint on a loopback mutual-TLS listener and "
        "orders go to it over HTTPS (the default of `simsmith serve`); `in-process` calls the "
        "same state machine directly")
    smdp_allow_lab_address: bool = Field(
        default=False, description="Lab only: allow an SM-DP+ address that is not an FQDN "
        "(localhost, an IP address) in activation codes; logged as a warning; refused in "
        "production mode")
    # An external SM-DP+ over ES2+ (simcore.smdp.es2plus_port).
    smdp_url: str | None = Field(default=None, description="ES2+ base URL of the SM-DP+")
    smdp_cert: Path | None = Field(default=None, description="Client certificate (PEM)")
    smdp_key: Path | None = Field(default=None, description="Client private key (PEM)")
    smdp_ca: Path | None = Field(default=None,
                                 description="CA bundle for the SM-DP+ certificate")
    smdp_requester_id: str = Field(default=DEFAULT_REQUESTER_ID,
                                   description="Our functionRequesterIdentifier")
    smdp_timeout: float = Field(default=10.0, gt=0, description="Seconds per ES2+ call")
    # Simsmith's own ES2+ endpoint (simcore.smdp.es2plus, simcore.smdp.access).
    es2plus_access: Path | None = Field(
        default=None, description="TOML access table: which certificate may call what for "
        "which operator (simcore.smdp.access)")
    es2plus_allow_plain_http: bool = Field(
        default=False, description="LAB ONLY: answer ES2+ over plain HTTP (HTTP Basic "
        "credentials travel in clear); refused in production mode")
    es2plus_credentials: SecretStr | None = Field(
        default=None, description="name=secret;… accepted as HTTP Basic credentials (for use "
        "behind a TLS-terminating proxy); mutual TLS needs none")
    es2plus_requesters: str | None = Field(
        default=None, description="client=requester1|requester2;…: the functionRequester"
        "Identifiers a client (certificate CN or credential name) may use besides its own name")
    es2plus_call_window_hours: float = Field(
        default=DEFAULT_CALL_WINDOW_HOURS, gt=0, description="hours a functionCallIdentifier "
        "stays bound to its call: a repeat within it is answered from the record (or refused "
        "for another body), after it the identifier is free again")
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
    es2plus_notify_other_points: str = Field(
        default="deleted=5,enabled=101,disabled=102", description="notificationPointId sent "
        "for the eUICC's delete/enable/disable notifications. SGP.22 defines points 1-4 only; "
        "these follow one commercial SM-DP+ (another uses deleted=8,enabled=6,disabled=7). A "
        "state left out is not sent; empty sends SGP.22's download points only")
    es2plus_receive_other_points: str = Field(
        default="5=deleted,101=enabled,102=disabled", description="The other way round: which "
        "notificationPointId an SM-DP+ sends simsmith (as operator) moves the profile to "
        "deleted, enabled or disabled. Several numbers may name one state, e.g. "
        "5=deleted,101=enabled,102=disabled,8=deleted,6=enabled,7=disabled for two SM-DP+s; "
        "empty: only SGP.22's points 1-4 move anything")

    @field_validator("smdp_order_validity", mode="before")
    @classmethod
    def _validity(cls, value: Any) -> Any:
        return parse_validity(value)

    @field_validator("smdp_order_validity")
    @classmethod
    def _validity_positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("must be longer than zero (or 'none': never expires)")
        return value

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'simsmith.db').resolve()}"


def hlr_choice(settings: Settings) -> Literal["embedded", "osmo-hlr", "none"]:
    """The HLR the settings select: SIMSMITH_HLR, else osmo-hlr when SIMSMITH_HLR_HOST is set,
    else the embedded one — except in production mode, where the embedded HLR is used only
    when SIMSMITH_HLR_ALLOW_EMBEDDED says so: no network element reaches it, so an activation
    there would succeed without any network knowing the subscriber. Production without an HLR
    named gets "none" (the HLR steps fail, saying why, and the runs are compensated); asking for
    the embedded one there without the allowance is a ValueError, as is osmo-hlr without its
    address (each naming the variable)."""
    choice = settings.hlr or ("osmo-hlr" if settings.hlr_host else "embedded")
    if choice == "osmo-hlr" and not settings.hlr_host:
        raise ValueError("SIMSMITH_HLR=osmo-hlr needs SIMSMITH_HLR_HOST (osmo-hlr's CTRL "
                         "address)")
    if choice == "embedded" and settings.mode == "production" and not settings.hlr_allow_embedded:
        if settings.hlr == "embedded":
            raise ValueError("SIMSMITH_HLR=embedded: the embedded HLR reaches no network; in "
                             "production mode set SIMSMITH_HLR_ALLOW_EMBEDDED=true if that is "
                             "really meant")
        return "none"
    return choice


NO_HLR_IN_PRODUCTION = ("no HLR configured: in production mode the embedded HLR is not used "
                        "(it reaches no network); set SIMSMITH_HLR_HOST (osmo-hlr), or "
                        "SIMSMITH_HLR=embedded with SIMSMITH_HLR_ALLOW_EMBEDDED=true")


_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_validity(value: Any) -> Any:
    """'7d', '48h', '90m', '3600s' → a timedelta; '', 'none' → None; anything else as given
    (pydantic then reads numbers as seconds and ISO 8601 durations, and refuses the rest)."""
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    if text in ("", "none"):
        return None
    number, unit = text[:-1], text[-1:]
    if unit in _UNITS and number.replace(".", "", 1).isdigit():
        return timedelta(**{_UNITS[unit]: float(number)})
    return value


def get_settings() -> Settings:
    return Settings()
