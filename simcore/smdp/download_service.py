"""simsmith's SM-DP+ download service: the ES9+ core (simcore.smdp.es9plus) wired to the store —
sessions in `smdp_download_session`, orders and profile state through
simcore.smdp.download_orders, the SM-DP+'s identity (simcore.smdp.identity: CERT.DPauth /
CERT.DPpb with SK.DPauth / SK.DPpb in the HSM; in dev mode a lab identity is made at the
address) and the profile package source (simcore.smdp.upp_source: the subscriber's package
personalised by the HSM, in memory only) — GSMA SGP.22 v2.5 §3.1.3, §5.6. The listener itself is
api.es9plus_listener; its settings simcore.smdp.es9plus_settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from esim.pki import DevPki, dev_init
from simcore.config import Settings
from simcore.smdp.download_orders import DownloadLimits, ProgressHook, StoreDownloadOrders
from simcore.smdp.es9plus import Es9PlusCore, StoreSessions
from simcore.smdp.es9plus_settings import Es9PlusSettings
from simcore.smdp.identity import smdp_identity
from simcore.smdp.rsp_files import FILES, identity_files, rsp_dir, settings_with
from simcore.smdp.upp_source import upp_source


def build_core(engine: Engine, *, address: str, settings: Settings, hsm: Callable[[], Any],
               es9: Es9PlusSettings | None = None,
               progress: ProgressHook | None = None) -> Es9PlusCore:
    """The ES9+ core of simsmith's SM-DP+ at `address`, over `engine`'s store, with the
    identity and templates of `settings` (its home, its SIMSMITH_SMDP_*). `hsm` opens the HSM
    (the identity's DP keys are in it)."""
    es9 = es9 or Es9PlusSettings()
    settings = settings_with(settings, smdp_address=address)
    limits = DownloadLimits(cc_attempts=es9.cc_attempts, downloads=es9.downloads)
    sessions = StoreSessions(engine)
    orders = StoreDownloadOrders(engine, address, limits=limits,
                                 service_provider=es9.service_provider, progress=progress,
                                 sessions=sessions)  # a session's step goes with its report
    return Es9PlusCore(smdp_identity(address=address, hsm=hsm, settings=settings),
                       sessions, orders, upp_source(engine, hsm, settings),
                       session_ttl=timedelta(seconds=es9.session_ttl_seconds))


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    ca: Path  # what an LPA trusts for it (a lab's; production: the GSMA CI's chain)


def tls_files(settings: Settings, es9: Es9PlusSettings | None = None) -> TlsFiles:
    """The ES9+ listener's certificate, CERT.DP.TLS (SIMSMITH_SMDP_TLS_CERT with
    SIMSMITH_ES9PLUS_TLS_KEY, or the rsp directory's smdp-tls.pem / smdp-tls.key — `simsmith pki`
    and the dev-mode lab identity make them), else the development server certificate of
    `$SIMSMITH_HOME/pki` (SAN localhost, 127.0.0.1, ::1; made when absent)."""
    es9 = es9 or Es9PlusSettings()
    files = identity_files(settings)
    directory = rsp_dir(settings)
    if files.tls_cert is not None:
        key = es9.tls_key if settings.smdp_tls_cert else directory / FILES["tls_key"]
        if key is None or not key.exists():
            raise ValueError(f"CERT.DP.TLS {files.tls_cert} has no key: set "
                             "SIMSMITH_ES9PLUS_TLS_KEY")
        return TlsFiles(files.tls_cert, key, directory / FILES["ci"])
    pki = DevPki(settings.home / "pki")
    if not all(p.exists() for p in pki.files()):
        dev_init(settings.home / "pki")
    return TlsFiles(pki.server_cert, pki.server_key, pki.ca)


def sweep_sessions(engine: Engine, now: datetime | None = None) -> int:
    """Delete the RSP sessions expired by `now`; how many (`simsmith smdp sweep`, the serve
    process's sweeper)."""
    return StoreSessions(engine).sweep(now or datetime.now(UTC))


def sweep_orders(engine: Engine, now: datetime | None = None) -> int:
    """End the released download orders whose validity is over by `now` (their profiles to
    error, audited, with the operator's HandleDownloadProgressInfo); how many (`simsmith smdp
    sweep`, the serve process's sweeper)."""
    return StoreDownloadOrders(engine, "").expire_due(now or datetime.now(UTC))
