"""Checks a profile package must pass before release (TCA eUICC Profile Package: Interoperable
Format §8.1 sequence of PEs, §8.2 header, §8.3 PINs/PUKs, §8.6.2 AKA parameters).

`validate` raises ProfileValidationError naming the element (kind#identification) and the field.
Messages never carry key, PIN or PUK values.
"""

from __future__ import annotations

from esim.errors import ProfileValidationError
from esim.saip.coding import IdentifierCodingError, iccid_from_ef, iccid_from_header, imsi_from_ef
from esim.saip.element import ProfileElement

# algorithmID -> (allowed key lengths, allowed OPc/TOPc lengths, ServicesList member(s))
_ALGORITHMS: dict[int, tuple[tuple[int, ...], tuple[int, ...], tuple[str, ...]]] = {
    1: ((16,), (16,), ("milenage",)),
    2: ((16, 32), (32,), ("tuak128", "tuak256")),
    3: ((16,), (16,), ("usim-test-algorithm",)),
}
_NAA_SERVICES = {"usim": "usim", "isim": "isim", "csim": "csim"}


def _name(e: ProfileElement) -> str:
    return e.kind if e.identification is None else f"{e.kind}#{e.identification}"


def validate(elements: list[ProfileElement]) -> None:
    """Raise ProfileValidationError on the first rule the package breaks."""
    if not elements or elements[0].kind != "header":
        raise ProfileValidationError(_name(elements[0]) if elements else "package", "kind",
                                     "the first profile element must be the header")
    if elements[-1].kind != "end":
        raise ProfileValidationError(_name(elements[-1]), "kind",
                                     "the last profile element must be end")
    header = elements[0].value
    seen: dict[int, str] = {}
    for e in elements[1:]:
        if e.kind in ("header", "end") and e is not elements[-1]:
            raise ProfileValidationError(_name(e), "kind", f"a second {e.kind} element")
        ident = e.identification
        if ident is None:
            raise ProfileValidationError(_name(e), "identification", "missing")
        if ident in seen:
            raise ProfileValidationError(_name(e), "identification",
                                         f"{ident} is also used by {seen[ident]}")
        seen[ident] = e.kind
    _check_iccid(elements, header)
    services = set(header["eUICC-Mandatory-services"])
    kinds = [e.kind for e in elements]
    for kind, service in _NAA_SERVICES.items():
        count = kinds.count(kind)
        if count and service not in services:
            raise ProfileValidationError("header", "eUICC-Mandatory-services",
                                         f"a {kind} element is present but {service} is not")
        if count > 1 and f"multiple-{service}" not in services:
            raise ProfileValidationError("header", "eUICC-Mandatory-services",
                                         f"{count} {kind} elements need multiple-{service}")
    for e in elements:
        if e.kind == "usim":
            try:
                imsi_from_ef(e.file_content("ef-imsi"))
            except (IdentifierCodingError, KeyError) as exc:
                raise ProfileValidationError(_name(e), "ef-imsi", str(exc)) from None
        elif e.kind == "akaParameter":
            _check_aka(e, services)


def _check_iccid(elements: list[ProfileElement], header: dict[str, object]) -> None:
    try:
        in_header = iccid_from_header(header["iccid"])  # type: ignore[arg-type]
    except IdentifierCodingError as exc:
        raise ProfileValidationError("header", "iccid", str(exc)) from None
    for e in elements:
        if e.kind == "mf":
            try:
                in_ef = iccid_from_ef(e.file_content("ef-iccid"))
            except (IdentifierCodingError, KeyError) as exc:
                raise ProfileValidationError(_name(e), "ef-iccid", str(exc)) from None
            if in_ef != in_header:
                raise ProfileValidationError(_name(e), "ef-iccid",
                                             f"ICCID {in_ef} differs from the header's {in_header}")


def _check_aka(e: ProfileElement, services: set[str]) -> None:
    choice, algo = e.value["algoConfiguration"]
    if choice != "algoParameter":
        return
    algorithm_id = algo["algorithmID"]
    if algorithm_id not in _ALGORITHMS:
        raise ProfileValidationError(_name(e), "algorithmID", f"unknown value {algorithm_id}")
    key_lengths, opc_lengths, needed = _ALGORITHMS[algorithm_id]
    if len(algo["key"]) not in key_lengths:
        raise ProfileValidationError(_name(e), "key", f"is {len(algo['key'])} bytes; algorithm "
                                     f"{algorithm_id} takes {key_lengths}")
    if len(algo["opc"]) not in opc_lengths:
        raise ProfileValidationError(_name(e), "opc", f"is {len(algo['opc'])} bytes; algorithm "
                                     f"{algorithm_id} takes {opc_lengths}")
    if algorithm_id == 2:
        needed = ("tuak256",) if len(algo["key"]) == 32 else ("tuak128",)
    if not services.intersection(needed):
        raise ProfileValidationError("header", "eUICC-Mandatory-services",
                                     f"{_name(e)} uses {needed[0]} but the service is not listed")
