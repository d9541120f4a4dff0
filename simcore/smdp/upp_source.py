"""The unprotected profile package (UPP) of a download: the subscriber's personalised SAIP
package, made when the BPP is built and never kept.

GSMA SGP.22 v2.x §2.5.4 (the UPP inside the bound profile package), §3.1.3 (the SM-DP+ builds
the BPP for the eUICC it authenticated); TCA eUICC Profile Package v2.3 (SAIP). The package is
esim's compiled template (simcore.esim_build) personalised with the SIM's identities from the
inventory, and its Ki, OPc, OTA keys, PINs, PUKs and ADM1 written into the buffer by the HSM
(`Hsm.patch_keys`, one call per package, audited as `key.patch` without values).

`HsmUppSource(engine, hsm, …)` is the `UppSource` of simcore.smdp.es9plus: called with the
released order, it returns the clear package as bytes, which `Es9PlusCore` passes straight into
`build_bpp` and drops; nothing here writes it to a file, the database or a log, and errors name
the SIM and the parameter, never a value (tests/smdp/test_upp_source.py scans the store and the
logs of a whole download for the keys). Templates: `SIMSMITH_SMDP_TEMPLATE`, or the one
`SIMSMITH_SMDP_PROFILE_TEMPLATES` names for the order's Profile Type (its batch's profile), or
the built-in template the Profile Type is named after. The 5G SUCI files come from the key
registry (esim_build.with_suci), re-read at most once a minute.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Engine, bindparam, func, select

from esim.build import verify_package
from esim.compiled import CompiledTemplate
from esim.errors import EsimError
from esim.template import builtin_template_names
from simcore import db, esim_build, key_writers, keys
from simcore.config import Settings, get_settings
from simcore.errors import InvalidInput
from simcore.esim_build import (
    PackageBuildError,
    ProfileOptions,
    check_options_fit,
    compiled_template,
    subscriber_params,
    with_suci,
)
from simcore.mnc_length import MncLengths
from simcore.models import Batch, Sim, SimCredential
from simcore.smdp.es9plus import ReleasedOrder

__all__ = ["UPP_COLUMNS", "HsmUppSource", "UppRecord", "parse_profile_templates",
           "upp_credentials", "upp_source"]

_MNC_TTL = 60.0  # seconds the IMSI ranges' MNC lengths are reused (ranges change rarely)
_SUCI_TTL = 60.0  # seconds the SUCI key registry's files are reused (a new key: within a minute)


def parse_profile_templates(text: str | None) -> dict[str, str]:
    """'type=template,type2=template2' → {type: template}; InvalidInput naming the entry."""
    out: dict[str, str] = {}
    for i, item in enumerate(p.strip() for p in (text or "").split(",")):
        if not item:
            continue
        name, sep, template = item.partition("=")
        if not sep or not name.strip() or not template.strip():
            raise InvalidInput("smdp_profile_templates", "not a type=template pair",
                               value=item, position=f"entry {i + 1}")
        out[name.strip()] = template.strip()
    return out


_sim, _batch = Sim.__table__, Batch.__table__  # type: ignore[attr-defined]
_cred = SimCredential.__table__  # type: ignore[attr-defined]
# Built once: statement construction and cache-key generation cost as much as SQLite's work.
_SIM_QUERY = (select(_sim.c.iccid, _sim.c.imsi, _sim.c.msisdn, _sim.c.kind, _sim.c.ki_ref,
                     _sim.c.opc_ref, _batch.c.profile, _cred.c.name, _cred.c.ref)
              .select_from(_sim.outerjoin(_batch, _sim.c.batch_id == _batch.c.id)
                           .outerjoin(_cred, _cred.c.iccid == _sim.c.iccid))
              .where(_sim.c.iccid == bindparam("iccid")))


@dataclass(frozen=True, slots=True)
class _SimRow:
    """What a package needs of a SIM record."""

    iccid: str
    imsi: str | None
    msisdn: str | None


# The SIM's columns a package needs, for a store query that reads them with the released order
# (simcore.smdp.download_orders: GetBoundProfilePackage's one read), then `UppRecord.of`.
UPP_COLUMNS = (_sim.c.imsi, _sim.c.msisdn, _sim.c.ki_ref, _sim.c.opc_ref)


def upp_credentials(dialect: str) -> Any:
    """The SIM's stored credentials (name → key reference) as one JSON object, a scalar
    subquery correlated to the `sim` row of the enclosing query (NULL when it has none)."""
    aggregate = func.json_object_agg if dialect == "postgresql" else func.json_group_object
    return (select(aggregate(_cred.c.name, _cred.c.ref, type_=JSON))
            .where(_cred.c.iccid == _sim.c.iccid).scalar_subquery())


@dataclass(frozen=True, slots=True)
class UppRecord:
    """What a package needs of the store for one SIM, read with its order
    (`ReleasedOrder.upp_record`): its identities, Profile Type and key references (opaque
    tokens, no key bytes)."""

    imsi: str | None
    msisdn: str | None
    ki_ref: str | None
    opc_ref: str | None
    profile: str | None
    credentials: Mapping[str, str]

    def __repr__(self) -> str:
        return f"UppRecord({self.imsi}, {', '.join(sorted(self.credentials)) or '-'})"

    @classmethod
    def of(cls, row: Sequence[Any], profile: str | None) -> UppRecord:
        """From UPP_COLUMNS' values and upp_credentials' after them."""
        imsi, msisdn, ki_ref, opc_ref, credentials = row
        return cls(imsi, msisdn, ki_ref, opc_ref, profile, credentials or {})


class HsmUppSource:
    """UppSource: the order's SIM personalised from its compiled template, keys by the HSM."""

    def __init__(self, engine: Engine, hsm: Any, *, template: str = "usim-isim-milenage",
                 templates: Mapping[str, str] | None = None,
                 options: ProfileOptions = ProfileOptions(), verify: bool = False) -> None:
        self.engine = engine
        # an HSM, or a callable opening it on the first package (the API opens it lazily)
        self._hsm: Any = hsm if hasattr(hsm, "backend") or not callable(hsm) else None
        self._open_hsm = None if self._hsm is not None else hsm
        self.options = options
        self.verify = verify  # decode and validate every package (tests; costs ~2x)
        self._default = compiled_template(template)
        check_options_fit(self._default, options)
        configured = {t: compiled_template(name) for t, name in (templates or {}).items()}
        for compiled in configured.values():
            check_options_fit(compiled, options)
        self._by_type: dict[str, CompiledTemplate | None] = dict(configured)
        self._mnc: tuple[float, MncLengths] | None = None
        self._suci: dict[int, tuple[float, ProfileOptions]] = {}
        self._lock = threading.Lock()
        compiled_query = _SIM_QUERY.compile(dialect=engine.dialect)
        self._sql = str(compiled_query)
        if engine.dialect.paramstyle in ("qmark", "format", "numeric"):
            self._params: Any = lambda iccid: (iccid,)
        else:  # named / pyformat
            self._params = lambda iccid: {"iccid": iccid}

    def __repr__(self) -> str:
        return f"HsmUppSource({self._default.template.name}, hsm={self._hsm!r})"

    @property
    def hsm(self) -> Any:
        if self._hsm is None:
            with self._lock:
                if self._hsm is None:
                    assert self._open_hsm is not None
                    self._hsm = self._open_hsm()
        return self._hsm

    def _mnc_lengths(self) -> MncLengths:
        now = time.monotonic()
        cached = self._mnc
        if cached is None or now - cached[0] > _MNC_TTL:
            with self._lock:
                cached = (now, MncLengths.load(self.engine))
                self._mnc = cached
        return cached[1]

    def _options_for(self, compiled: CompiledTemplate) -> ProfileOptions:
        """The options with the template's SUCI files from the key registry (esim_build.
        with_suci: EF.SUCI_Calc_Info, routing indicator), reused for _SUCI_TTL seconds."""
        now = time.monotonic()
        cached = self._suci.get(id(compiled))
        if cached is None or now - cached[0] > _SUCI_TTL:
            with self._lock:
                cached = (now, with_suci(self.engine, compiled, self.options))
                self._suci[id(compiled)] = cached
        return cached[1]

    def _template_for(self, profile_type: str | None) -> CompiledTemplate:
        """The Profile Type's template when configured; else a built-in template of that name
        (a batch made for one, e.g. `ts48`); else the default."""
        if profile_type is None:
            return self._default
        if profile_type not in self._by_type:
            found: CompiledTemplate | None = None
            if profile_type in builtin_template_names():  # never a path from a batch's name
                try:
                    found = compiled_template(profile_type)
                    check_options_fit(found, self.options)
                except InvalidInput:
                    found = None
            self._by_type[profile_type] = found
        return self._by_type[profile_type] or self._default

    def _sim(self, iccid: str, record: UppRecord | None = None
             ) -> tuple[_SimRow, str | None, keys.SimKeys]:
        """The SIM's identities, Profile Type and key references: `record` when the order was
        read with them, else one Core query, a row per stored credential (the ORM's
        per-object work was most of a download's store time)."""
        if record is not None:
            return self._keys(iccid, record.imsi, record.msisdn, record.ki_ref, record.opc_ref,
                              record.profile, record.credentials.items())
        # One SELECT on a pooled DBAPI connection: SQLAlchemy's connection and transaction
        # events (BEGIN, then the rollback on return) cost five times the query itself here.
        # It runs in autocommit: SQLite's connections are (no writer lock), psycopg's is put
        # so for it — else its implicit BEGIN and the pool's ROLLBACK on return were two more
        # round trips, and psycopg drops every prepared statement of the connection at a
        # ROLLBACK (the ES9+ steps' statements on it were parsed and planned again).
        # On PostgreSQL the thread's kept connection of the ES9+ steps (db.KeptConnections):
        # no pool checkout and return around a 40 µs query.
        rows: Sequence[Any]
        if self.engine.dialect.name == "postgresql":
            rows = db.kept_connections(self.engine).run(self._sql, self._params(iccid))[0]
        else:
            raw = self.engine.raw_connection()
            try:
                cursor = raw.cursor()
                cursor.execute(self._sql, self._params(iccid))
                rows = cursor.fetchall()
                cursor.close()
            finally:
                raw.close()
        if not rows or rows[0][3] != "esim":
            raise InvalidInput("iccid", "no eSIM profile with this ICCID", value=iccid)
        _, imsi, msisdn, _, ki_token, opc_token, profile, _, _ = rows[0]
        return self._keys(iccid, imsi, msisdn, ki_token, opc_token, profile,
                          [(r[7], r[8]) for r in rows if r[7] is not None])

    @staticmethod
    def _keys(iccid: str, imsi: str | None, msisdn: str | None, ki_token: str | None,
              opc_token: str | None, profile: str | None, credentials: Any
              ) -> tuple[_SimRow, str | None, keys.SimKeys]:
        if not ki_token or not opc_token:
            raise keys.MissingKeys(f"SIM {iccid} has no Ki/OPc in the store")
        # esim_build's token reader: names are not re-validated (the HSM binds owner and type
        # into each blob, so an altered token fails at unwrap)
        ref = esim_build.stored_ref
        sim_keys = keys.SimKeys(iccid, ref(ki_token), ref(opc_token),
                                {name: ref(token) for name, token in credentials})
        return _SimRow(iccid, imsi, msisdn), profile, sim_keys

    def package(self, iccid: str, record: UppRecord | None = None) -> bytes:
        """The clear UPP of SIM `iccid` (bytes; the caller protects it and drops it); `record`:
        what the store holds for it, read with its order (else read here)."""
        sim, profile_type, sim_keys = self._sim(iccid, record)
        compiled = self._template_for(profile_type)
        if self.options.with_msisdn and not sim.msisdn:
            raise InvalidInput("with_msisdn", f"SIM {iccid} has no MSISDN in the inventory")
        params = subscriber_params(sim, self._mnc_lengths().of(sim.imsi or ""),  # type: ignore[arg-type]
                                   self._options_for(compiled))
        try:
            der = compiled.personalise(params, key_writers.package_patcher(self.hsm, sim_keys,
                                                                           compiled))
            if self.verify:
                verify_package(der)
        except EsimError as e:
            raise PackageBuildError(iccid, e) from None
        return der

    def __call__(self, order: ReleasedOrder) -> bytes:
        record = order.upp_record
        return self.package(order.iccid, record if isinstance(record, UppRecord) else None)


def upp_source(engine: Engine, hsm: Any, settings: Settings | None = None) -> HsmUppSource:
    """The UppSource the settings describe (template, templates by Profile Type); `hsm` is the
    HSM or a callable that opens it when the first package is made."""
    settings = settings or get_settings()
    return HsmUppSource(engine, hsm, template=settings.smdp_template,
                        templates=parse_profile_templates(settings.smdp_profile_templates))
