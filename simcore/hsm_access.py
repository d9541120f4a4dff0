"""Opening the configured HSM for services (CLI, API, imports) without a terminal.

Backend from SIMSMITH_HSM_BACKEND: `soft` (default; keystore in $SIMSMITH_HOME/hsm) or `pkcs11`
(SIMSMITH_PKCS11_MODULE, _TOKEN, _PIN; SIMSMITH_PKCS11_SESSIONS sizes its session pool, default
hsm_sim.pkcs11.DEFAULT_SESSIONS). The soft HSM opens with, in order: the passphrase of a dev
keystore (SIMSMITH_HSM_PASSPHRASE), the sealed dev file (insecure, for `make run`), or master key
components from `components` (a callable that asks custodians; the CLI passes hidden prompts).
A server has no custodians at hand: it needs a dev keystore or the pkcs11 backend.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from hsm_sim.hsm import AuditSink, Hsm, KekInfo
from simcore.config import Settings, get_settings
from simcore.errors import SimsmithError

if TYPE_CHECKING:
    from hsm_sim.pkcs11 import Pkcs11Hsm
    from simcore.hsm_audit import AuditLogSink

PKCS11_ENV = ("SIMSMITH_PKCS11_MODULE", "SIMSMITH_PKCS11_TOKEN", "SIMSMITH_PKCS11_PIN")


class HsmUnavailable(SimsmithError):
    """The configured HSM cannot be opened (not initialised, locked, misconfigured)."""


def hsm_dir(settings: Settings | None = None) -> Path:
    return Path((settings or get_settings()).home) / "hsm"


def hsm_backend(settings: Settings | None = None) -> str:
    """SIMSMITH_HSM_BACKEND, checked: `soft` or `pkcs11`."""
    b = (settings or get_settings()).hsm_backend
    if b not in ("soft", "pkcs11"):
        raise HsmUnavailable(f"SIMSMITH_HSM_BACKEND: expected soft or pkcs11, got {b!r}")
    return b


def pkcs11_sessions(settings: Settings | None = None) -> int:
    """SIMSMITH_PKCS11_SESSIONS (default hsm_sim.pkcs11.DEFAULT_SESSIONS), checked."""
    from hsm_sim.pkcs11 import DEFAULT_SESSIONS

    raw = ((settings or get_settings()).pkcs11_sessions or "").strip()
    if raw and not (raw.isdigit() and int(raw) >= 1):
        raise HsmUnavailable(f"SIMSMITH_PKCS11_SESSIONS: expected a number of sessions "
                             f">= 1, got {raw!r}")
    return int(raw) if raw else DEFAULT_SESSIONS


def open_pkcs11(audit: AuditSink | None = None, settings: Settings | None = None) -> Pkcs11Hsm:
    """The PKCS#11 backend from SIMSMITH_PKCS11_MODULE / _TOKEN / _PIN / _SESSIONS; creates the
    token's storage KEK on first use."""
    settings = settings or get_settings()
    values = (settings.pkcs11_module, settings.pkcs11_token,
              settings.pkcs11_pin.get_secret_value() if settings.pkcs11_pin else None)
    missing = [name for name, v in zip(PKCS11_ENV, values, strict=True) if not v]
    if missing:
        raise HsmUnavailable(f"{missing[0]} is not set (the pkcs11 backend needs "
                             f"{', '.join(PKCS11_ENV)})")
    from hsm_sim.pkcs11 import Pkcs11Hsm

    module, token, pin = (str(v) for v in values)
    return Pkcs11Hsm(module, token, pin, sessions=pkcs11_sessions(settings), audit=audit)


def kek_list(settings: Settings | None = None) -> list[KekInfo]:
    """The KEKs (name, purpose, KCVs; never a key) without the master key: read from the soft
    keystore's metadata, or from the token."""
    settings = settings or get_settings()
    if hsm_backend(settings) == "pkcs11":
        p11 = open_pkcs11(settings=settings)
        try:
            return list(p11.kek_list())
        finally:
            p11.close()
    from hsm_sim.keystore import Keystore

    d = hsm_dir(settings)
    if not (d / "keystore.json").is_file():
        raise HsmUnavailable(f"no HSM keystore in {d}: run `simsmith hsm init` first")
    return [r.info() for r in Keystore.load(d).keks.values()]


def per_worker(hsm: Hsm, settings: Settings | None = None, *,
               audit: AuditSink | None = None) -> Callable[[], Hsm]:
    """An opener for one worker thread given the HSM already opened (with any prompts): the
    soft HSM is shared; the pkcs11 backend gets its own instance per worker (same audit sink)."""
    if getattr(hsm, "backend", "") != "pkcs11":
        return lambda: hsm
    return lambda: open_hsm(settings, audit=audit)


def store_audit_sink(actor: str, settings: Settings | None = None) -> AuditLogSink | None:
    """An audit sink into the configured store's audit log (simcore.hsm_audit), or None when
    there is no initialised store to write to (an HSM set up before `simsmith init`)."""
    from sqlalchemy.exc import SQLAlchemyError

    from simcore import db
    from simcore.hsm_audit import AuditLogSink

    url = (settings or get_settings()).effective_database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return None
    engine = db.make_engine(url)
    try:
        db.check_schema(engine)
    except (db.SchemaNotCurrent, SQLAlchemyError):
        return None
    return AuditLogSink(engine, actor)


def open_hsm(
    settings: Settings | None = None,
    *,
    components: Callable[[int | None], list[bytes]] | None = None,
    passphrase: Callable[[], str] | None = None,
    audit: AuditSink | None = None,
) -> Hsm:
    """The HSM of the configuration, opened, reporting to `audit` (e.g. store_audit_sink).
    Raises HsmUnavailable saying what is missing."""
    settings = settings or get_settings()
    if hsm_backend(settings) == "pkcs11":
        return open_pkcs11(audit, settings)
    from hsm_sim.keystore import Keystore
    from hsm_sim.soft import SoftHsm

    d = hsm_dir(settings)
    if not (d / "keystore.json").is_file():
        raise HsmUnavailable(f"no HSM keystore in {d}: run `simsmith hsm init` first")
    store = Keystore.load(d)
    if store.master_source == "dev-passphrase":
        secret = settings.hsm_passphrase
        phrase = secret.get_secret_value() if secret is not None else None
        if phrase is None and (d / "dev-master.sealed").is_file():
            return SoftHsm.open_sealed_dev(d, audit)
        if phrase is None and passphrase is not None:
            phrase = passphrase()
        if phrase is None:
            raise HsmUnavailable("the dev HSM is locked: set SIMSMITH_HSM_PASSPHRASE")
        return SoftHsm.open(d, passphrase=phrase, audit=audit)
    if components is None:
        raise HsmUnavailable("the HSM master key needs its custodians' components: open it "
                             "from the CLI, or use the pkcs11 backend for unattended services")
    return SoftHsm.open(d, components=components(store.master_components), audit=audit)
