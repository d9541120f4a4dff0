"""Where each personalised parameter lives in a profile package, and how its bytes are made.

A Field is one fixed-length OCTET STRING in one profile element (TCA SAIP §8): its path in the
decoded value, its length and the function turning SubscriberParams into its bytes. Key fields
(Ki, OPc/TOPc, OTA keys) carry no such function: only the HSM writes them (esim.compiled.KeySlot).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from esim.errors import TemplateError
from esim.params import (
    SubscriberParams,
    encode_acc,
    encode_adm,
    encode_pin,
    encode_plmn_list,
    encode_puk,
    encode_smsp,
    encode_spn,
)
from esim.saip import ProfileElement
from esim.saip.coding import iccid_to_ef, iccid_to_header, imsi_to_ef
from esim.template import Template

PARAMETERS = ("iccid", "imsi", "ki", "opc", "pin1", "puk1", "pin2", "puk2", "adm1", "acc", "spn",
              "hplmn", "oplmn", "smsp", "ota-keys")
KEY_PARAMETERS = frozenset({"ki", "opc", "ota-keys"})
# PINKeyReferenceValue / PUKKeyReferenceValue (SAIP §8.3): pinAppl1, secondPINAppl1, adm1.
_PIN_REFS = {"pin1": 1, "pin2": 129, "adm1": 10}
_PUK_REFS = {"puk1": 1, "puk2": 129}

Encoder = Callable[[SubscriberParams], bytes]
Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Field:
    param: str  # parameter name; for key fields the key slot name ("ki", "ota-kvn01-kid02", …)
    element: int  # index of the profile element in the package
    path: Path  # member names / list indexes from the element value (CHOICEs stepped through)
    length: int
    where: str  # e.g. "usim#8.ef-imsi", for messages
    encode: Encoder | None  # None: a key field, written by the HSM


def _walk(value: Any, path: Path) -> Any:
    for step in path:
        if isinstance(value, tuple):
            value = value[1]
        value = value[step]
    return value[1] if isinstance(value, tuple) else value


def get_field(elements: list[ProfileElement], f: Field) -> bytes:
    return _walk(elements[f.element].value, f.path)  # type: ignore[no-any-return]


def set_field(elements: list[ProfileElement], f: Field, data: bytes) -> None:
    """Write `data` into the decoded element tree at the field's path."""
    if len(data) != f.length:
        raise TemplateError(f"{f.where}: {len(data)} bytes for a field of {f.length}")
    parent = _walk(elements[f.element].value, f.path[:-1])
    last = f.path[-1]
    old = parent[last]
    parent[last] = (old[0], data) if isinstance(old, tuple) else data


def _content_index(element: ProfileElement, file: str, size: int | None) -> tuple[int, int]:
    """Index and length of the file's first fillFileContent (added, zero-filled, if absent)."""
    items = element.file(file)
    for i, (choice, item) in enumerate(items):
        if choice == "fillFileContent":
            if i > 0 and items[i - 1][0] == "fillFileOffset":
                raise TemplateError(f"{element.kind}.{file}: content at an offset is not supported")
            return i, len(item)
        if choice == "fillFileOffset":
            break
    if size is None:
        raise TemplateError(f"{element.kind}.{file} has no content and no known size")
    fcp_end = next(i + 1 for i, (choice, _) in enumerate(items) if choice == "fileDescriptor")
    items.insert(fcp_end, ("fillFileContent", bytes(size)))
    return fcp_end, size


def _record_length(element: ProfileElement, file: str) -> int:
    fcp = next(item for choice, item in element.file(file) if choice == "fileDescriptor")
    descriptor = fcp.get("fileDescriptor", b"")
    if len(descriptor) < 4:
        raise TemplateError(f"{element.kind}.{file} is not a record file")
    return int.from_bytes(descriptor[2:4], "big")


def _spn(default: str, condition: int, size: int) -> Encoder:
    return lambda p: encode_spn(default if p.spn is None else p.spn, condition, size)


def _smsp(default: str, record_length: int) -> Encoder:
    return lambda p: encode_smsp(default if p.smsc is None else p.smsc, record_length)


def _plmns(param: str, default: tuple[str, ...], act: bytes, size: int) -> Encoder:
    def encode(p: SubscriberParams) -> bytes:
        value = getattr(p, param)
        return encode_plmn_list(param, default if value is None else tuple(value), act, size)
    return encode


def _secret(param: str, encode: Callable[[str, str], bytes]) -> Encoder:
    return lambda p: encode(param, getattr(p, param))


def locate_fields(template: Template, elements: list[ProfileElement]) -> list[Field]:
    """Every field the template personalises, in package order; adds empty contents as needed."""
    unknown = set(template.parameters) - set(PARAMETERS)
    if unknown:
        raise TemplateError(f"template {template.name}: unknown parameters {sorted(unknown)}")
    d = template.defaults
    wanted = set(template.parameters)
    out: list[Field] = []

    def add(param: str, index: int, path: Path, length: int, enc: Encoder | None) -> None:
        e = elements[index]
        name = e.kind if e.identification is None else f"{e.kind}#{e.identification}"
        where = name + "." + ".".join(str(p) for p in path)
        out.append(Field(param, index, path, length, where, enc))

    act = bytes.fromhex(d.get("plmn_act", "C880"))
    for i, e in enumerate(elements):
        kind, v = e.kind, e.value
        if kind == "header" and "iccid" in wanted:
            add("iccid", i, ("iccid",), 10, lambda p: iccid_to_header(p.iccid))
        elif kind == "mf" and "iccid" in wanted:
            j, _ = _content_index(e, "ef-iccid", 10)
            add("iccid", i, ("ef-iccid", j), 10, lambda p: iccid_to_ef(p.iccid))
        elif kind == "usim":
            if "imsi" in wanted:
                j, _ = _content_index(e, "ef-imsi", 9)
                add("imsi", i, ("ef-imsi", j), 9, lambda p: imsi_to_ef(p.imsi))
            if "acc" in wanted:
                j, _ = _content_index(e, "ef-acc", 2)
                add("acc", i, ("ef-acc", j), 2, lambda p: encode_acc(p.acc, p.imsi))
            if "spn" in wanted:
                j, n = _content_index(e, "ef-spn", 17)
                spn, cond = d.get("spn", ""), d.get("spn_display_condition", 1)
                add("spn", i, ("ef-spn", j), n, _spn(spn, cond, n))
            if "smsp" in wanted and "ef-smsp" in v:
                rec = _record_length(e, "ef-smsp")
                j, _ = _content_index(e, "ef-smsp", rec)
                smsc = d.get("smsc", "")
                add("smsp", i, ("ef-smsp", j), rec, _smsp(smsc, rec))
        elif kind == "opt-usim":
            for param, file in (("hplmn", "ef-hplmnwact"), ("oplmn", "ef-oplmnwact")):
                if param in wanted and file in v:
                    j, n = _content_index(e, file, None)
                    default = tuple(d.get(param, ()))
                    add(param, i, (file, j), n, _plmns(param, default, act, n))
        elif kind == "akaParameter" and v["algoConfiguration"][0] == "algoParameter":
            algo = v["algoConfiguration"][1]
            for param, member in (("ki", "key"), ("opc", "opc")):
                if param in wanted:
                    add(param, i, ("algoConfiguration", member), len(algo[member]), None)
        elif kind == "pinCodes" and v["pinCodes"][0] == "pinconfig":
            for j, config in enumerate(v["pinCodes"][1]):
                for param, ref in _PIN_REFS.items():
                    if param in wanted and config["keyReference"] == ref:
                        enc = encode_adm if param == "adm1" else encode_pin
                        add(param, i, ("pinCodes", j, "pinValue"), 8, _secret(param, enc))
        elif kind == "pukCodes":
            for j, config in enumerate(v["pukCodes"]):
                for param, ref in _PUK_REFS.items():
                    if param in wanted and config["keyReference"] == ref:
                        add(param, i, ("pukCodes", j, "pukValue"), 8, _secret(param, encode_puk))
        elif kind == "securityDomain" and "ota-keys" in wanted:
            for j, key in enumerate(v.get("keyList", ())):
                kvn, kid = key["keyVersionNumber"].hex().upper(), key["keyIdentifier"].hex().upper()
                for k, component in enumerate(key["keyComponents"]):
                    add(f"ota-kvn{kvn}-kid{kid}", i, ("keyList", j, "keyComponents", k, "keyData"),
                        len(component["keyData"]), None)
    found = {f.param for f in out} | ({"ota-keys"} if any(
        f.param.startswith("ota-") for f in out) else set())
    missing = wanted - found
    if missing:
        raise TemplateError(f"template {template.name}: the package has no place for "
                            f"{sorted(missing)}")
    return out
