"""Profile packages for stored SIMs: the use case behind `simsmith esim build` / `build-batch`
(and any API route that wants a package), over esim's compiled templates (docs/esim.md).

- `profile_options` checks the operator's options (EF.EHPLMN, EF.MSISDN, ISIM identities) once,
  before anything is built; a bad one is an `InvalidInput` naming the option.
- `subscriber_params` turns a SIM record into esim's `SubscriberParams`: ICCID and IMSI from the
  inventory, the MNC length of its IMSI range (`simcore.mnc_length`, the one rule), the MSISDN
  when asked; PIN/PUK/ADM fields get placeholders that the HSM overwrites (`simcore.keys`).
- `build_for_sim` builds (and decodes and validates) one SIM's package; `build_batch` yields a
  batch's packages in ICCID order, keys written by the HSM (`Hsm.patch_keys`) per SIM.
- `with_suci` fills the 5G SUCI files (EF.SUCI_Calc_Info, DF.SAIP's copy, EF.Routing_Indicator;
  TS 31.102 §4.4.11) from the SUCI key registry and settings, once per build (issue 20 item 4).

Where the packages go (files, audit, encryption) is `simcore.esim_export`.
"""

from __future__ import annotations

import binascii
import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import col

from esim.build import build_package, build_packages, get_compiled, verify_package
from esim.compiled import CompiledTemplate, PatchKeys
from esim.errors import EsimError
from esim.ims import check_domain, check_impi, check_impu
from esim.params import SubscriberParams, encode_address, encode_plmn
from hsm_sim.hsm import Hsm
from hsm_sim.keyref import KeyRef, KeyType
from simcore import inventory, key_writers, keys, suci_keys
from simcore.config import get_settings
from simcore.db import read_session
from simcore.errors import InvalidInput, SimsmithError
from simcore.mnc_length import MncLengths
from simcore.models import Sim, SimCredential
from simcore.suci import routing_indicator_bcd

__all__ = [
    "BuiltPackage",
    "PackageBuildError",
    "ProfileOptions",
    "batch_bounds",
    "batch_size",
    "build_batch",
    "build_for_sim",
    "build_range",
    "check_options_fit",
    "compiled_template",
    "profile_options",
    "subscriber_params",
    "with_suci",
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
    suci_calc_info: bytes | None = None  # EF.SUCI_Calc_Info (with_suci: the key registry's)
    routing_indicator: str | None = None

    def params(self) -> dict[str, Any]:
        """The SubscriberParams fields these options set."""
        names = ("ehplmn", "msisdn", "impi", "impu", "ims_domain", "suci_calc_info",
                 "routing_indicator")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


def profile_options(*, ehplmn: Sequence[str] | None = None, msisdn: str | None = None,
                    with_msisdn: bool = False, impi: str | None = None,
                    impu: Sequence[str] | None = None, ims_domain: str | None = None,
                    routing_indicator: str | None = None) -> ProfileOptions:
    """The options, each checked and normalised; InvalidInput whose `field` names the option
    (`ehplmn`, `msisdn`, `impi`, `impu`, `ims_domain`, `routing_indicator`) and whose reason is
    esim's (simcore.suci's) message.
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
    if routing_indicator is not None:
        routing_indicator_bcd(routing_indicator)  # InvalidSuci naming routing_indicator
    return ProfileOptions(plmns, msisdn, with_msisdn, impi, identities, ims_domain,
                          routing_indicator=routing_indicator)


# Option -> the template parameter that must be personalised for the option to take effect.
_OPTION_PARAMETERS = {"ehplmn": "ehplmn", "msisdn": "msisdn", "with_msisdn": "msisdn",
                      "impi": "impi", "impu": "impu", "ims_domain": "ims-domain",
                      "suci_calc_info": "suci", "routing_indicator": "routing-indicator"}


def with_suci(engine: Engine, compiled: CompiledTemplate, options: ProfileOptions
              ) -> ProfileOptions:
    """The options with the SUCI files filled for a template that personalises them ("suci",
    "routing-indicator"): EF.SUCI_Calc_Info from the key registry's active public keys
    (simcore.suci_keys.calc_info, null-scheme last; the null-scheme only while there is no
    key) and the routing indicator from SIMSMITH_SUCI_ROUTING_INDICATOR — once per build, the
    same bytes for every package (the compiled template patches them in place)."""
    wanted = compiled.template.parameters
    more: dict[str, Any] = {}
    if "suci" in wanted and options.suci_calc_info is None:
        more["suci_calc_info"] = suci_keys.calc_info(engine)
    if "routing-indicator" in wanted and options.routing_indicator is None:
        more["routing_indicator"] = get_settings().suci_routing_indicator
    ri = more.get("routing_indicator", options.routing_indicator)
    if ri is not None:
        routing_indicator_bcd(ri)  # InvalidSuci (an InvalidInput) naming routing_indicator
    return dataclasses.replace(options, **more) if more else options


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
    return dataclasses.replace(key_writers.package_params(sim.iccid, sim.imsi), **more)


@dataclass(frozen=True)
class BuiltPackage:
    """One SIM's package (DER, with its keys: handle as an export, simcore.esim_export)."""

    iccid: str
    imsi: str
    template: str
    der: bytes = dataclasses.field(repr=False)


def build_for_sim(engine: Engine, hsm: Hsm, compiled: CompiledTemplate, iccid: str,
                  options: ProfileOptions = ProfileOptions()) -> BuiltPackage:
    """One SIM's package, keys and codes written by the HSM, decoded and validated."""
    check_options_fit(compiled, options)
    options = with_suci(engine, compiled, options)
    sim = inventory.get_sim(engine, iccid)
    if options.with_msisdn and not sim.msisdn:
        raise InvalidInput("with_msisdn", f"SIM {sim.iccid} has no MSISDN in the inventory")
    k = keys.load_keys(engine, sim.iccid)
    params = subscriber_params(sim, MncLengths.load(engine).of(sim.imsi or ""), options)
    try:
        der = build_package(compiled, params,
                            key_writers.package_patcher(hsm, k, compiled), verify=True)
    except EsimError as e:
        raise PackageBuildError(sim.iccid, e) from None
    return BuiltPackage(sim.iccid, sim.imsi or "", compiled.template.name, der)


def batch_size(engine: Engine, batch: str) -> int:
    """How many SIMs the batch holds (NotFound for an unknown batch)."""
    with read_session(engine) as s:
        bid = inventory.batch_id(s, batch)
        return int(s.execute(select(func.count()).select_from(Sim)
                             .where(col(Sim.batch_id) == bid)).scalar_one())


@dataclass(frozen=True, slots=True)
class _SimRow:
    """What a package needs of a SIM record (read with Core, not the ORM: a batch reads many)."""

    iccid: str
    imsi: str | None
    msisdn: str | None


_KEY_TYPES = {t.value: t for t in KeyType}


def _ref(token: str) -> KeyRef:
    """A stored key reference, parsed without re-validating its names: the HSM binds owner and
    key type into the wrapped blob (hsm_sim.binding), so an altered token fails at unwrap; a
    token of another shape takes the checking parser."""
    parts = token.split(".")
    key_type = _KEY_TYPES.get(parts[2]) if len(parts) == 6 and parts[0] == "kr1" else None
    if key_type is None:
        return KeyRef.from_token(token)
    blob = parts[5]
    try:
        # two str.replace calls: str.translate with a mapping looks every character up
        raw = binascii.a2b_base64((blob + "=" * (-len(blob) % 4)).replace("-", "+")
                                  .replace("_", "/"), strict_mode=True)
    except ValueError:
        return KeyRef.from_token(token)
    return KeyRef.trusted(parts[1], key_type, parts[3], parts[4], raw)


stored_ref = _ref  # for other readers of stored tokens on hot paths (simcore.smdp.upp_source)


def batch_bounds(engine: Engine, batch: str, size: int = 1000) -> list[tuple[str, str, int]]:
    """The batch cut into runs of `size` SIMs in ICCID order: (after, last, index of the first
    SIM in the batch); `after` is exclusive ('' for the first run), `last` inclusive. Keyset
    pages over the batch's (batch_id, iccid) index, ICCIDs only."""
    sim = Sim.__table__  # type: ignore[attr-defined]
    with read_session(engine) as s:
        bid = inventory.batch_id(s, batch)
        out: list[tuple[str, str, int]] = []
        after, index = "", 0
        while True:
            rows = s.execute(select(sim.c.iccid).where(sim.c.batch_id == bid,
                                                       sim.c.iccid > after)
                             .order_by(sim.c.iccid).limit(size)).scalars().all()
            if not rows:
                return out
            out.append((after, rows[-1], index))
            after, index = rows[-1], index + len(rows)


def _range_keys(engine: Engine, batch_key: int, after: str, last: str
                ) -> list[tuple[_SimRow, keys.SimKeys]]:
    """SIMs of a batch with after < ICCID <= last and their key references: two queries."""
    sim = Sim.__table__  # type: ignore[attr-defined]
    cred = SimCredential.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(select(sim.c.iccid, sim.c.imsi, sim.c.msisdn, sim.c.ki_ref,
                                   sim.c.opc_ref)
                            .where(sim.c.batch_id == batch_key, sim.c.iccid > after,
                                   sim.c.iccid <= last)
                            .order_by(sim.c.iccid)).all()
        creds: dict[str, dict[str, KeyRef]] = {}
        for iccid, name, token in conn.execute(
                select(cred.c.iccid, cred.c.name, cred.c.ref)
                .where(cred.c.iccid > after, cred.c.iccid <= last,
                       cred.c.iccid.in_([r.iccid for r in rows]))):
            creds.setdefault(iccid, {})[name] = _ref(token)
    out = []
    for iccid, imsi, msisdn, ki, opc in rows:
        if not ki or not opc:
            raise keys.MissingKeys(f"SIM {iccid} has no Ki/OPc in the store")
        out.append((_SimRow(iccid, imsi, msisdn),
                    keys.SimKeys(iccid, _ref(ki), _ref(opc), creds.get(iccid, {}))))
    return out


def build_range(engine: Engine, hsm: Hsm, compiled: CompiledTemplate, batch_key: int,
                bounds: tuple[str, str, int], options: ProfileOptions, mnc: MncLengths, *,
                verify_every: int = 1000) -> list[tuple[str, bytes]]:
    """The packages of one run of a batch (batch_bounds), (ICCID, DER) in ICCID order;
    packages whose index in the batch is a multiple of `verify_every` are decoded and
    validated. PackageBuildError names the SIM at fault."""
    after, last, index = bounds
    out = []
    for i, (sim, k) in enumerate(_range_keys(engine, batch_key, after, last), index):
        try:
            params = subscriber_params(sim, mnc.of(sim.imsi or ""), options)  # type: ignore[arg-type]
            der = compiled.personalise(params, key_writers.package_patcher(hsm, k, compiled))
            if verify_every and i % verify_every == 0:
                verify_package(der)
        except EsimError as e:
            raise PackageBuildError(sim.iccid, e) from None
        out.append((sim.iccid, der))
    return out


def build_batch(engine: Engine, hsm: Hsm, compiled: CompiledTemplate, batch: str,
                options: ProfileOptions = ProfileOptions(), *, verify_every: int = 1000
                ) -> Iterator[tuple[SubscriberParams, bytes]]:
    """Every SIM of the batch in ICCID order: (params, package). Every `verify_every`-th
    package (the first included) is decoded and validated; 0 none. SIMs without an MSISDN get
    an empty EF.MSISDN record under `with_msisdn`. PackageBuildError names the SIM at fault."""
    check_options_fit(compiled, options)
    options = with_suci(engine, compiled, options)
    mnc = MncLengths.load(engine)
    current: dict[str, keys.SimKeys] = {}
    last = [""]  # the SIM being built: the generator below runs one SIM at a time

    def subscribers() -> Iterator[SubscriberParams]:
        for sim, k in keys.batch_keys(engine, batch):
            current[sim.iccid] = k
            last[0] = sim.iccid
            yield subscriber_params(sim, mnc.of(sim.imsi or ""), options)

    def patch_for(params: SubscriberParams) -> PatchKeys:
        return key_writers.package_patcher(hsm, current.pop(params.iccid), compiled)

    packages = build_packages(compiled, subscribers(), patch_for, verify_every=verify_every)
    while True:
        try:
            item = next(packages)
        except StopIteration:
            return
        except EsimError as e:
            raise PackageBuildError(last[0], e) from None
        yield item
