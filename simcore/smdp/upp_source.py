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
`SIMSMITH_SMDP_PROFILE_TEMPLATES` names for the order's Profile Type (its batch's profile).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import col

from esim.build import verify_package
from esim.compiled import CompiledTemplate
from esim.errors import EsimError
from simcore import key_writers, keys
from simcore.config import Settings
from simcore.db import read_session
from simcore.errors import InvalidInput
from simcore.esim_build import (
    PackageBuildError,
    ProfileOptions,
    check_options_fit,
    compiled_template,
    subscriber_params,
)
from simcore.mnc_length import MncLengths
from simcore.models import Batch, Sim
from simcore.smdp.es9plus import ReleasedOrder

__all__ = ["HsmUppSource", "parse_profile_templates", "upp_source"]

_MNC_TTL = 60.0  # seconds the IMSI ranges' MNC lengths are reused (ranges change rarely)


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


class HsmUppSource:
    """UppSource: the order's SIM personalised from its compiled template, keys by the HSM."""

    def __init__(self, engine: Engine, hsm: Any, *, template: str = "usim-isim-milenage",
                 templates: Mapping[str, str] | None = None,
                 options: ProfileOptions = ProfileOptions(), verify: bool = False) -> None:
        self.engine = engine
        self.hsm = hsm
        self.options = options
        self.verify = verify  # decode and validate every package (tests; costs ~2x)
        self._default = compiled_template(template)
        check_options_fit(self._default, options)
        self._by_type = {t: compiled_template(name) for t, name in (templates or {}).items()}
        for compiled in self._by_type.values():
            check_options_fit(compiled, options)
        self._mnc: tuple[float, MncLengths] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HsmUppSource({self._default.template.name}, hsm={self.hsm!r})"

    def _mnc_lengths(self) -> MncLengths:
        now = time.monotonic()
        cached = self._mnc
        if cached is None or now - cached[0] > _MNC_TTL:
            with self._lock:
                cached = (now, MncLengths.load(self.engine))
                self._mnc = cached
        return cached[1]

    def _template_for(self, profile_type: str | None) -> CompiledTemplate:
        if profile_type is not None and profile_type in self._by_type:
            return self._by_type[profile_type]
        return self._default

    def _sim(self, iccid: str) -> tuple[Sim, str | None]:
        with read_session(self.engine) as s:
            sim = s.get(Sim, iccid)
            if sim is None or sim.kind != "esim":
                raise InvalidInput("iccid", "no eSIM profile with this ICCID", value=iccid)
            profile = None
            if sim.batch_id is not None:
                profile = s.execute(select(col(Batch.profile)).where(
                    col(Batch.id) == sim.batch_id)).scalar_one_or_none()
            s.expunge(sim)
            return sim, profile

    def package(self, iccid: str) -> bytes:
        """The clear UPP of SIM `iccid` (bytes; the caller protects it and drops it)."""
        sim, profile_type = self._sim(iccid)
        compiled = self._template_for(profile_type)
        sim_keys = keys.load_keys(self.engine, iccid)
        if self.options.with_msisdn and not sim.msisdn:
            raise InvalidInput("with_msisdn", f"SIM {iccid} has no MSISDN in the inventory")
        params = subscriber_params(sim, self._mnc_lengths().of(sim.imsi or ""), self.options)
        try:
            der = compiled.personalise(params, key_writers.package_patcher(self.hsm, sim_keys,
                                                                           compiled))
            if self.verify:
                verify_package(der)
        except EsimError as e:
            raise PackageBuildError(iccid, e) from None
        return der

    def __call__(self, order: ReleasedOrder) -> bytes:
        return self.package(order.iccid)


def upp_source(settings: Settings, engine: Engine, hsm: Any) -> HsmUppSource:
    """The UppSource the settings describe (template, templates by Profile Type)."""
    return HsmUppSource(engine, hsm, template=settings.smdp_template,
                        templates=parse_profile_templates(settings.smdp_profile_templates))
