"""The settings of simsmith's ES9+ listener and download rules (SIMSMITH_ES9PLUS_*), in a module
of their own with no heavy import: `simsmith serve` and every API worker read them at start-up
(simcore.smdp.download_service wires the ES9+ core only when a port is set).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SESSION_TTL_SECONDS = 600.0  # simcore.smdp.es9plus.DEFAULT_SESSION_TTL
DEFAULT_CC_ATTEMPTS = 3
DEFAULT_DOWNLOADS = 3
# ES9+ threads per process with a PKCS#11 HSM unless set: each download makes three HSM
# signatures, and a network HSM's round trip would otherwise hold up every other request
PKCS11_THREADS = 8
DEFAULT_MAX_BODY = 256 * 1024  # the largest ES9+ request (AuthenticateClient) is a few KiB


class Es9PlusSettings(BaseSettings):
    """simsmith's ES9+ listener and download rules (SIMSMITH_ES9PLUS_*)."""

    model_config = SettingsConfigDict(env_prefix="SIMSMITH_ES9PLUS_", extra="ignore")

    port: int | None = Field(
        default=None, ge=0, le=65535, description="Serve ES9+ over HTTPS on this port "
        "(`simsmith serve --es9plus-port`; `make run`: 8443; unset: no ES9+ listener)")
    host: str = Field(default="127.0.0.1", description="Address the ES9+ listener binds")
    tls_key: Path | None = Field(default=None, description="The key (PEM) of CERT.DP.TLS when "
                                 "SIMSMITH_SMDP_TLS_CERT names it (the rsp directory's "
                                 "smdp-tls.key otherwise)")
    session_ttl_seconds: float = Field(
        default=DEFAULT_SESSION_TTL_SECONDS, gt=0,
        description="How long an RSP session (transactionId) lives")
    sweep_seconds: float = Field(
        default=60.0, gt=0, description="How often the serve process deletes expired sessions")
    cc_attempts: int = Field(
        default=DEFAULT_CC_ATTEMPTS, ge=1, description="Wrong confirmation codes an order "
        "takes; the last one ends it in error")
    downloads: int = Field(
        default=DEFAULT_DOWNLOADS, ge=1, description="BPPs delivered per order, the first "
        "download included (re-downloads of a profile never reported installed)")
    threads: int | None = Field(
        default=None, ge=0, le=256,
        description="Threads that run the ES9+ functions in each process; 0: the listener's "
        "own thread (its event loop, apart from the API's) runs them one at a time — per "
        "download ~2 ms of CPU less than handing each request to a thread (docs/benchmarks.md, "
        "smdp); a request then waits behind the one being answered. Unset: 0 with the soft "
        f"HSM, {PKCS11_THREADS} with PKCS#11 (an HSM's signature is a wait the other requests "
        "need not share)")

    def resolved_threads(self, hsm_backend: str) -> int:
        """`threads`, or its default for the HSM backend when unset."""
        if self.threads is not None:
            return self.threads
        return 0 if hsm_backend == "soft" else PKCS11_THREADS

    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY, ge=4096,
                                description="Largest ES9+ request body accepted")
    service_provider: str = Field(default="simsmith", max_length=32,
                                  description="serviceProviderName in the profile metadata")
