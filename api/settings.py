"""The API's settings: simcore's Settings plus what only the server needs (SIMSMITH_<NAME>).

Built by `ApiSettings()` in the entry point (or a test), never at import. In production mode
(`SIMSMITH_MODE=production`) placeholder values are refused: the demo SM-DP+ address and the
dev-mode soft HSM sealed on disk or opened by SIMSMITH_HSM_PASSPHRASE; the HSM settings are
checked whole (backend, the PKCS#11 module, token, PIN and session count) at startup; the ES2+
lab flags (SIMSMITH_ES2PLUS_ALLOW_PLAIN_HTTP, SIMSMITH_SMDP_ALLOW_LAB_ADDRESS) are refused. The
SM-DP+ and ES2+ settings live in the tree's base (simcore.config.Settings).
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from simcore.config import DEMO_SMDP_ADDRESS, Settings, hlr_choice

__all__ = ["DEMO_SMDP_ADDRESS", "ApiSettings"]


class ApiSettings(Settings):
    api_key_cache_seconds: float = Field(
        default=2.0, ge=0, description="How long a checked API key is trusted without a read "
        "(a revoked key stops working within this time)")
    webhooks_enabled: bool = Field(default=True, description="Run the webhook deliverer")
    webhook_poll_seconds: float = Field(default=0.5, gt=0)
    webhook_max_attempts: int = Field(default=8, ge=1)
    webhook_backoff_seconds: float = Field(default=2.0, gt=0, description="First retry delay")
    webhook_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    outbox_retention_days: float = Field(
        default=7.0, gt=0, description="Published outbox events older than this are deleted by "
        "the webhook deliverer (pending ones never are); deliveries keep their own copy")
    log_json: bool = Field(default=True, description="Structured JSON logs")
    console_enabled: bool = Field(default=True, description="Serve the operator console at "
                                  "/console (api.console)")
    console_upload_max_bytes: int = Field(
        default=1 << 30, ge=1, description="Largest vendor file the console takes (bytes)")
    console_import_keep_seconds: int = Field(
        default=1800, ge=60, le=86400, description="How long the console keeps a dry run's "
        "file (encrypted) for the one-click import that follows it")
    trace_url: str | None = Field(
        default=None, description="A trace UI's address for a trace id, e.g. "
        "https://jaeger.example/trace/{trace_id}: the console links a workflow's trace there")
    threads: int | None = Field(
        default=None, ge=1, le=256, description="Threads per worker for routes that block (the "
        "database, the HSM, an SM-DP+). Unset: 2 on SQLite with the in-process SM-DP+ (writes "
        "serialise; more threads only contend for the interpreter lock), 32 otherwise")

    @field_validator("trace_url")
    @classmethod
    def _trace_url(cls, v: str | None) -> str | None:
        if not v:
            return None
        if not v.startswith(("https://", "http://")) or "{trace_id}" not in v:
            raise ValueError("SIMSMITH_TRACE_URL: an http(s) address holding {trace_id}")
        return v

    @model_validator(mode="after")
    def _no_placeholders_in_production(self) -> ApiSettings:
        if self.mode == "production" and self.smdp_address == DEMO_SMDP_ADDRESS:
            raise ValueError("SIMSMITH_SMDP_ADDRESS is the demo placeholder; set the real "
                             "SM-DP+ address in production mode")
        if self.mode == "production" and (self.home / "hsm" / "dev-master.sealed").exists():
            raise ValueError("the HSM is the dev-mode soft HSM sealed on disk; not in "
                             "production mode")
        if self.mode == "production":
            self._check_hsm_for_production()
            hlr_choice(self)  # the embedded HLR only when explicitly allowed
            for name in ("es2plus_allow_plain_http", "smdp_allow_lab_address"):
                if getattr(self, name):
                    raise ValueError(f"SIMSMITH_{name.upper()} is a lab flag; not in "
                                     "production mode")
        return self

    def _check_hsm_for_production(self) -> None:
        """The HSM settings of the one tree: a backend that opens unattended, no dev secret."""
        if self.hsm_backend not in ("soft", "pkcs11"):
            raise ValueError(f"SIMSMITH_HSM_BACKEND: expected soft or pkcs11, got "
                             f"{self.hsm_backend!r}")
        if self.hsm_passphrase is not None:
            raise ValueError("SIMSMITH_HSM_PASSPHRASE opens a dev-mode soft HSM; not in "
                             "production mode")
        if self.hsm_backend == "pkcs11":
            for name in ("pkcs11_module", "pkcs11_token", "pkcs11_pin"):
                if not getattr(self, name):
                    raise ValueError(f"SIMSMITH_{name.upper()} is not set (the pkcs11 backend "
                                     "needs SIMSMITH_PKCS11_MODULE, _TOKEN and _PIN)")
            raw = (self.pkcs11_sessions or "").strip()
            if raw and not (raw.isdigit() and int(raw) >= 1):
                raise ValueError(f"SIMSMITH_PKCS11_SESSIONS: expected a number of sessions "
                                 f">= 1, got {raw!r}")
