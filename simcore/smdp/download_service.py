"""simsmith's SM-DP+ download service: the ES9+ core (simcore.smdp.es9plus) wired to the store —
sessions in `smdp_download_session`, orders and profile state through
simcore.smdp.download_orders, the SM-DP+'s identity and the profile package (UPP) source — and
its settings (GSMA SGP.22 v2.5 §3.1.3, §5.6; the listener itself is api.es9plus_listener).

`identity_for` and `upp_source_for` are the only places that decide where CERT.DPauth /
CERT.DPpb, their keys and the clear UPP come from: today the development RSP PKI in
`$SIMSMITH_HOME/pki/rsp` (esim.rsp_pki, keys in files: development only) and the subscriber's
package built with the HSM writing the keys (simcore.esim_build); simcore.smdp.identity and
simcore.smdp.upp_source take their place when present (HSM-held DP keys, the HSM-bounded UPP).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import col

from esim.rsp_pki import DEFAULT_SMDP_OID, DevRspPki
from esim.sgp22.certificates import TrustedCis
from esim.sgp22.signatures import software_signer
from simcore.db import read_session
from simcore.log import get_logger
from simcore.models import Batch, Sim
from simcore.smdp.download_orders import DownloadLimits, ProgressHook, StoreDownloadOrders
from simcore.smdp.es9plus import (
    Es9PlusCore,
    ReleasedOrder,
    SmdpIdentity,
    StoreSessions,
    UppSource,
)
from simcore.smdp.es9plus_settings import Es9PlusSettings

log = get_logger("smdp.es9plus")



def dev_identity(pki_dir: Path, address: str, oid: str = DEFAULT_SMDP_OID) -> SmdpIdentity:
    """The SM-DP+ identity of the development RSP PKI in `pki_dir` (created on first use; the
    virtual eUICC of `simsmith euicc` trusts the same CI). Keys in files: development only."""
    pki = DevRspPki(pki_dir)
    dpauth, dppb = pki.dpauth(), pki.dppb()
    return SmdpIdentity(address=address, oid=oid, dpauth_certificate=dpauth.cert,
                        dpauth_signer=software_signer(dpauth.key),
                        dppb_certificate=dppb.cert, dppb_signer=software_signer(dppb.key),
                        cis=TrustedCis([pki.ci().cert]))


def _replacement(module: str, name: str) -> Callable[..., Any] | None:
    """`name` from simcore.smdp.<module> when that module exists (the HSM-backed identity and
    UPP source), else None."""
    try:
        mod = importlib.import_module(f"simcore.smdp.{module}")
    except ModuleNotFoundError as e:
        if e.name != f"simcore.smdp.{module}":
            raise
        return None
    found = getattr(mod, name, None)
    return found if callable(found) else None


def identity_for(home: Path, address: str, settings: Es9PlusSettings,
                 hsm: Callable[[], Any]) -> SmdpIdentity:
    """The SM-DP+'s identity: simcore.smdp.identity's `smdp_identity(address=…, hsm=…)` when
    present (HSM-held SK.DPauth / SK.DPpb), else the development RSP PKI."""
    build = _replacement("identity", "smdp_identity")
    if build is not None:
        return build(address=address, hsm=hsm)  # type: ignore[no-any-return]
    return dev_identity(home / "pki" / "rsp", address, settings.oid)


def upp_source_for(engine: Engine, settings: Es9PlusSettings,
                   hsm: Callable[[], Any]) -> UppSource:
    """Where a released order's clear profile package comes from: simcore.smdp.upp_source's
    `upp_source(engine=…, hsm=…)` when present, else the subscriber's package built from its
    batch's template (or the default one) with the HSM writing its keys and codes, in memory."""
    build = _replacement("upp_source", "upp_source")
    if build is not None:
        return build(engine=engine, hsm=hsm)  # type: ignore[no-any-return]
    from simcore.esim_build import build_for_sim, compiled_template

    def source(order: ReleasedOrder) -> bytes:
        with read_session(engine) as s:
            template = s.execute(select(col(Batch.profile)).join(
                Sim, col(Sim.batch_id) == col(Batch.id)).where(
                col(Sim.iccid) == order.iccid)).scalar_one_or_none()
        try:
            compiled = compiled_template(template or settings.template)
        except Exception:  # a batch profile name that is no template: the default one
            compiled = compiled_template(settings.template)
        return build_for_sim(engine, hsm(), compiled, order.iccid).der

    return source


def build_core(engine: Engine, *, address: str, home: Path, hsm: Callable[[], Any],
               settings: Es9PlusSettings | None = None,
               progress: ProgressHook | None = None) -> Es9PlusCore:
    """The ES9+ core of simsmith's SM-DP+ at `address`, over `engine`'s store. `hsm` opens the
    HSM on first use (it is not needed before a BPP is built)."""
    settings = settings or Es9PlusSettings()
    limits = DownloadLimits(cc_attempts=settings.cc_attempts, downloads=settings.downloads)
    orders = StoreDownloadOrders(engine, address, limits=limits,
                                 service_provider=settings.service_provider, progress=progress)
    return Es9PlusCore(identity_for(home, address, settings, hsm), StoreSessions(engine),
                       orders, upp_source_for(engine, settings, hsm),
                       session_ttl=timedelta(seconds=settings.session_ttl_seconds))


def sweep_sessions(engine: Engine, now: datetime | None = None) -> int:
    """Delete the RSP sessions expired by `now`; how many (`simsmith smdp sweep`, the serve
    process's sweeper)."""
    return StoreSessions(engine).sweep(now or datetime.now(UTC))
