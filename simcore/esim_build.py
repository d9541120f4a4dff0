"""Profile packages for stored SIMs: the use case behind `simsmith esim build` / `build-batch`
(and any API route that wants a package), over esim's compiled templates (docs/esim.md).

- `profile_options` checks the operator's options (EF.EHPLMN, EF.MSISDN, ISIM identities) once,
  before anything is built; a bad one is an `InvalidInput` naming the option.
- `subscriber_params` turns a SIM record into esim's `SubscriberParams`: ICCID and IMSI from the
  inventory, the MNC length of its IMSI range (`simcore.mnc_length`, the one rule), the MSISDN
  when asked; PIN/PUK/ADM fields get placeholders that the HSM overwrites (`simcore.keys`).
- `build_for_sim` builds (and decodes and validates) one SIM's package; `build_batch` yields a
  batch's packages in ICCID order, keys written by the HSM (`Hsm.patch_keys`) per SIM.

Where the packages go (files, audit, encryption) is `simcore.esim_export`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import col

from esim.build import build_package, build_packages, get_compiled
from esim.compiled import CompiledTemplate, PatchKeys
from esim.errors import EsimError
from esim.ims import check_domain, check_impi, check_impu
from esim.params import SubscriberParams, encode_address, encode_plmn
from simcore import inventory, keys
from simcore.db import read_session
from simcore.errors import InvalidInput, SimsmithError
from simcore.mnc_length import MncLengths
from simcore.models import Sim

__all__ = [
    "BuiltPackage",
    "PackageBuildError",
    "ProfileOptions",
    "batch_size",
    "build_batch",
    "build_for_sim",
    "check_options_fit",
    "compiled_template",
    "profile_options",
    "subscriber_params",
]


class PackageBuildError(SimsmithError):
    """A SIM's package could not be built (a value does not fit the template, a key is
    missing); the message names the SIM and the parameter, never a secret."""

    def __init__(self, iccid: str, cause: SimsmithError) -> None:
        self.iccid = iccid
        self.cause = cause
        super().__init__(f"SIM {iccid}: {cause}")


@dataclass(frozen=True)
class ProfileOptions:
    """What the operator sets on top of the template for every package of a run (checked by
    `profile_options`). `with_msisdn` takes each SIM's MSISDN from the inventory."""

    ehplmn: tuple[str, ...] | None = None
    msisdn: str | None = None
    with_msisdn: bool = False
    impi: str | None = None
    impu: tuple[str, ...] | None = None
    ims_domain: str | None = None

    def params(self) -> dict[str, Any]:
        """The SubscriberParams fields these options set."""
        names = ("ehplmn", "msisdn", "impi", "impu", "ims_domain")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


def profile_options(*, ehplmn: Sequence[str] | None = None, msisdn: str | None = None,
                    with_msisdn: bool = False, impi: str | None = None,
                    impu: Sequence[str] | None = None, ims_domain: str | None = None
                    ) -> ProfileOptions:
    """The options, each checked and normalised; InvalidInput whose `field` names the option
    (`ehplmn`, `msisdn`, `impi`, `impu`, `ims_domain`) and whose reason is esim's message.
    `ehplmn` values may hold several PLMNs separated by commas."""
    if msisdn is not None and with_msisdn:
        raise InvalidInput("msisdn", "msisdn and with_msisdn exclude each other")
    option = ""
    try:
        plmns = None
        if ehplmn:
            option = "ehplmn"
            plmns = tuple(p.strip() for value in ehplmn for p in value.split(",") if p.strip())
            for plmn in plmns:
                encode_plmn(plmn)
        if msisdn is not None:
            option = "msisdn"
            encode_address(msisdn, "msisdn")
        if impi is not None:
            option = "impi"
            impi = check_impi(impi)
        identities = None
        if impu:
            option = "impu"
            identities = tuple(check_impu(u) for u in impu)
        if ims_domain is not None:
            option = "ims_domain"
            ims_domain = check_domain(ims_domain)
    except EsimError as e:
        raise InvalidInput(option, str(e)) from None
    return ProfileOptions(plmns, msisdn, with_msisdn, impi, identities, ims_domain)


# Option -> the template parameter that must be personalised for the option to take effect.
_OPTION_PARAMETERS = {"ehplmn": "ehplmn", "msisdn": "msisdn", "with_msisdn": "msisdn",
                      "impi": "impi", "impu": "impu", "ims_domain": "ims-domain"}


def check_options_fit(compiled: CompiledTemplate, options: ProfileOptions) -> None:
    """Refuse an option the template would silently ignore: one whose parameter the template
    does not personalise (InvalidInput naming the option). `ts48` keeps TS.48's ISIM as
    published (its 32-byte EF.IMPI and EF.DOMAIN cannot hold identities derived from an IMSI),
    so --impi, --impu and --ims-domain go with `usim-isim-milenage` or a template of one's own."""
    t = compiled.template
    for option, parameter in _OPTION_PARAMETERS.items():
        given = getattr(options, option)
        if given not in (None, False) and parameter not in t.parameters:
            what = ("the ISIM identities (its ISIM keeps the base package's)"
                    if parameter in ("impi", "impu", "ims-domain") else f"'{parameter}'")
            raise InvalidInput(option, f"template {t.name} does not personalise {what}",
                               expected="a template whose [template] parameters list "
                                        f"'{parameter}' (e.g. usim-isim-milenage)")


def compiled_template(template: str | Path) -> CompiledTemplate:
    """A built-in template by name, or a template file (`….toml`), compiled once per process.
    InvalidInput naming `template` when it does not exist or does not compile."""
    try:
        return get_compiled(Path(template) if str(template).endswith(".toml") else str(template))
    except EsimError as e:
        raise InvalidInput("template", str(e), value=str(template)) from None


def subscriber_params(sim: Sim, mnc_length: int | None, options: ProfileOptions
                      ) -> SubscriberParams:
    """esim's parameters for a stored SIM: identities from the record, the MNC length of its
    IMSI range (None: the template's EF.AD decides), the options; code placeholders."""
    if not sim.imsi:
        raise InvalidInput("imsi", f"SIM {sim.iccid} has no IMSI", expected="a SIM with an IMSI")
    more = options.params() | {"mnc_length": mnc_length}
    if options.with_msisdn and sim.msisdn:  # stored as E.164 digits: an international number
        more["msisdn"] = "+" + sim.msisdn.lstrip("+")
    return dataclasses.replace(keys.package_params(sim.iccid, sim.imsi), **more)


@dataclass(frozen=True)
class BuiltPackage:
    """One SIM's package (DER, with its keys: handle as an export, simcore.esim_export)."""

    iccid: str
    imsi: str
    template: str
    der: bytes = dataclasses.field(repr=False)


def build_for_sim(engine: Engine, hsm: Any, compiled: CompiledTemplate, iccid: str,
                  options: ProfileOptions = ProfileOptions()) -> BuiltPackage:
    """One SIM's package, keys and codes written by the HSM, decoded and validated."""
    check_options_fit(compiled, options)
    sim = inventory.get_sim(engine, iccid)
    if options.with_msisdn and not sim.msisdn:
        raise InvalidInput("with_msisdn", f"SIM {sim.iccid} has no MSISDN in the inventory")
    k = keys.load_keys(engine, sim.iccid)
    params = subscriber_params(sim, MncLengths.load(engine).of(sim.imsi or ""), options)
    try:
        der = build_package(compiled, params, keys.package_patcher(hsm, k, compiled),
                            verify=True)
    except EsimError as e:
        raise PackageBuildError(sim.iccid, e) from None
    return BuiltPackage(sim.iccid, sim.imsi or "", compiled.template.name, der)


def batch_size(engine: Engine, batch: str) -> int:
    """How many SIMs the batch holds (NotFound for an unknown batch)."""
    with read_session(engine) as s:
        bid = inventory.batch_id(s, batch)
        return int(s.execute(select(func.count()).select_from(Sim)
                             .where(col(Sim.batch_id) == bid)).scalar_one())


def build_batch(engine: Engine, hsm: Any, compiled: CompiledTemplate, batch: str,
                options: ProfileOptions = ProfileOptions(), *, verify_every: int = 1000
                ) -> Iterator[tuple[SubscriberParams, bytes]]:
    """Every SIM of the batch in ICCID order: (params, package). Every `verify_every`-th
    package (the first included) is decoded and validated; 0 none. SIMs without an MSISDN get
    an empty EF.MSISDN record under `with_msisdn`. PackageBuildError names the SIM at fault."""
    check_options_fit(compiled, options)
    mnc = MncLengths.load(engine)
    current: dict[str, keys.SimKeys] = {}
    last = [""]  # the SIM being built: the generator below runs one SIM at a time

    def subscribers() -> Iterator[SubscriberParams]:
        for sim, k in keys.batch_keys(engine, batch):
            current[sim.iccid] = k
            last[0] = sim.iccid
            yield subscriber_params(sim, mnc.of(sim.imsi or ""), options)

    def patch_for(params: SubscriberParams) -> PatchKeys:
        return keys.package_patcher(hsm, current.pop(params.iccid), compiled)

    packages = build_packages(compiled, subscribers(), patch_for, verify_every=verify_every)
    while True:
        try:
            item = next(packages)
        except StopIteration:
            return
        except EsimError as e:
            raise PackageBuildError(last[0], e) from None
        yield item
