"""Where each personalised parameter lives in a profile package, and how its bytes are made.

A Field is one fixed-length OCTET STRING in one profile element (TCA SAIP §8): its path in the
decoded value, its length and the function turning SubscriberParams into its bytes. Key fields
(Ki, OPc/TOPc, OTA keys) carry no such function: only the HSM writes them (esim.compiled.KeySlot).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from esim.errors import TemplateError
from esim.ims import (
    check_domain,
    check_impi,
    encode_derived_identity,
    encode_impu_records,
    encode_nai_tlv,
    home_network_domain,
)
from esim.params import (
    ParameterError,
    SubscriberParams,
    encode_acc,
    encode_adm,
    encode_msisdn,
    encode_pin,
    encode_plmn_list,
    encode_puk,
    encode_smsp,
    encode_spn,
)
from esim.saip import ProfileElement
from esim.saip.coding import iccid_to_ef, iccid_to_header, imsi_to_ef
from esim.template import Template
from simcore.suci import InvalidSuci, parse_suci_calc_info, routing_indicator_bcd, suci_calc_info

PARAMETERS = ("iccid", "imsi", "ki", "opc", "pin1", "puk1", "pin2", "puk2", "adm1", "acc", "spn",
              "hplmn", "oplmn", "smsp", "ota-keys", "ehplmn", "msisdn", "impi", "impu",
              "ims-domain", "suci", "routing-indicator")
ISIM_PARAMETERS = ("impi", "impu", "ims-domain")
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


def _fcp(element: ProfileElement, file: str) -> dict[str, Any]:
    return next(item for choice, item in element.file(file)  # type: ignore[no-any-return]
                if choice == "fileDescriptor")


def _record_length(element: ProfileElement, file: str) -> int:
    descriptor = _fcp(element, file).get("fileDescriptor", b"")
    if len(descriptor) < 4:
        raise TemplateError(f"{element.kind}.{file} is not a record file")
    return int.from_bytes(descriptor[2:4], "big")


def _file_size(element: ProfileElement, file: str) -> int:
    size = _fcp(element, file).get("efFileSize")
    if not size:
        raise TemplateError(f"{element.kind}.{file} has no efFileSize in its file descriptor")
    return int.from_bytes(size, "big")


def _whole_content(element: ProfileElement, file: str) -> tuple[int, int]:
    """Make the file's content one fillFileContent of the file's size (replacing what the base
    package wrote there); its index and length."""
    size = _file_size(element, file)
    items = element.file(file)
    items[:] = [(c, item) for c, item in items if c not in ("fillFileContent", "fillFileOffset")]
    fcp_end = next(i + 1 for i, (choice, _) in enumerate(items) if choice == "fileDescriptor")
    items.insert(fcp_end, ("fillFileContent", bytes(size)))
    return fcp_end, size


def _first_record(element: ProfileElement, file: str, record_length: int) -> int:
    """Index of a fillFileContent holding exactly record 1 (split off or added as needed)."""
    items = element.file(file)
    i, n = _content_index(element, file, record_length)
    if n < record_length:
        raise TemplateError(f"{element.kind}.{file}: the base package writes {n} bytes, part "
                            f"of a {record_length}-byte record")
    if n > record_length:
        content = items[i][1]
        items[i:i + 1] = [("fillFileContent", content[:record_length]),
                          ("fillFileContent", content[record_length:])]
    return i


def ef_ad_mnc_length(elements: list[ProfileElement]) -> int | None:
    """The MNC length the profile states: the USIM's EF.AD byte 4, low nibble (TS 31.102
    §4.2.18; a template's [defaults] mnc_length is written there), None if it states none."""
    for e in elements:
        if e.kind == "usim" and "ef-ad" in e.value:
            content = next((item for c, item in e.file("ef-ad") if c == "fillFileContent"), b"")
            if len(content) >= 4 and content[3] & 0x0F in (2, 3):
                return content[3] & 0x0F
    return None


def _mnc_length(template: Template, elements: list[ProfileElement]) -> int:
    """The MNC length for the ISIM identities (ef_ad_mnc_length), required."""
    found = ef_ad_mnc_length(elements)
    if found is not None:
        return found
    raise TemplateError(f"template {template.name}: the ISIM identities need the MNC length: "
                        "set [defaults] mnc_length = 2 or 3 (the USIM's EF.AD does not say)")


def _spn(default: str, condition: int, size: int) -> Encoder:
    return lambda p: encode_spn(default if p.spn is None else p.spn, condition, size)


def _smsp(default: str, record_length: int) -> Encoder:
    return lambda p: encode_smsp(default if p.smsc is None else p.smsc, record_length)


def _msisdn(record_length: int) -> Encoder:
    return lambda p: encode_msisdn(p.msisdn, record_length)


def _plmns(param: str, default: tuple[str, ...], act: bytes, size: int) -> Encoder:
    def encode(p: SubscriberParams) -> bytes:
        value = getattr(p, param)
        return encode_plmn_list(param, default if value is None else tuple(value), act, size)
    return encode


def _mnc(p: SubscriberParams, mnc_length: int) -> int:
    if p.mnc_length is not None and p.mnc_length != mnc_length:
        raise ParameterError("mnc_length", f"is {p.mnc_length}, but the template's EF.AD says "
                                           f"{mnc_length} MNC digits")
    return mnc_length


def _impi(mnc_length: int, size: int) -> Encoder:
    def encode(p: SubscriberParams) -> bytes:
        if p.impi is None:  # TS 23.003 §13.3
            return encode_derived_identity("impi", b"", p.imsi, _mnc(p, mnc_length), size, size)
        return encode_nai_tlv("impi", check_impi(p.impi), size)
    return encode


def _impu(mnc_length: int, record_length: int, size: int) -> Encoder:
    def encode(p: SubscriberParams) -> bytes:
        if p.impu is None:  # TS 23.003 §13.4B, in record 1
            return encode_derived_identity("impu", b"sip:", p.imsi, _mnc(p, mnc_length),
                                           record_length, size)
        return encode_impu_records(tuple(p.impu), record_length, size)
    return encode


def _ims_domain(default: str | None, mnc_length: int, size: int) -> Encoder:
    fixed = None if default is None else _encode_domain(check_domain(default), size)

    def encode(p: SubscriberParams) -> bytes:
        if p.ims_domain is not None:
            return _encode_domain(check_domain(p.ims_domain), size)
        if fixed is not None:
            return fixed
        mnc = _mnc(p, mnc_length)  # TS 23.003 §13.2, from the IMSI's MCC and MNC
        return _derived_domain(p.imsi[:3 + mnc], mnc, size)
    return encode


@functools.lru_cache(maxsize=256)
def _encode_domain(domain: str, size: int) -> bytes:
    return encode_nai_tlv("ims_domain", domain, size)


@functools.lru_cache(maxsize=256)
def _derived_domain(plmn: str, mnc_length: int, size: int) -> bytes:
    return _encode_domain(home_network_domain(plmn + "0", mnc_length), size)


@functools.lru_cache(maxsize=64)
def _calc_info(data: bytes, size: int) -> bytes:
    """EF.SUCI_Calc_Info content checked (TS 31.102 §4.4.11.8) and FF-padded to the file."""
    try:
        parse_suci_calc_info(data)
    except InvalidSuci as e:
        raise ParameterError("suci_calc_info", str(e)) from None
    if not data or len(data) > size:
        raise ParameterError("suci_calc_info", f"{len(data)} bytes for a file of {size}")
    return data + b"\xff" * (size - len(data))


def _suci(size: int) -> Encoder:
    fixed = _calc_info(suci_calc_info([]), size)  # the null-scheme only, as TS.48's fill

    def encode(p: SubscriberParams) -> bytes:
        return fixed if p.suci_calc_info is None else _calc_info(p.suci_calc_info, size)
    return encode


@functools.lru_cache(maxsize=64)
def _routing(ri: str, size: int) -> bytes:
    """EF.Routing_Indicator (TS 31.102 §4.4.11.11): 2 bytes of BCD, then RFU 'FF'."""
    try:
        return routing_indicator_bcd(ri) + b"\xff" * (size - 2)
    except InvalidSuci as e:
        raise ParameterError("routing_indicator", str(e)) from None


def _routing_indicator(default: str, size: int) -> Encoder:
    if size < 2:
        raise TemplateError(f"EF.Routing_Indicator of {size} bytes cannot hold one")
    fixed = _routing(default, size)
    return lambda p: fixed if p.routing_indicator is None else _routing(p.routing_indicator, size)


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
    mnc_length = (_mnc_length(template, elements) if wanted & set(ISIM_PARAMETERS) else None)
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
        if kind in ("usim", "opt-usim"):
            if "ehplmn" in wanted and "ef-ehplmn" in v:
                j, n = _whole_content(e, "ef-ehplmn")
                add("ehplmn", i, ("ef-ehplmn", j), n,
                    _plmns("ehplmn", tuple(d.get("ehplmn", ())), b"", n))
            if "msisdn" in wanted and "ef-msisdn" in v:
                rec = _record_length(e, "ef-msisdn")
                j = _first_record(e, "ef-msisdn", rec)
                add("msisdn", i, ("ef-msisdn", j), rec, _msisdn(rec))
        if kind == "opt-usim":
            for param, file in (("hplmn", "ef-hplmnwact"), ("oplmn", "ef-oplmnwact")):
                if param in wanted and file in v:
                    j, n = _content_index(e, file, None)
                    default = tuple(d.get(param, ()))
                    add(param, i, (file, j), n, _plmns(param, default, act, n))
        elif kind == "isim" and mnc_length is not None:
            if "impi" in wanted:
                j, n = _whole_content(e, "ef-impi")
                add("impi", i, ("ef-impi", j), n, _impi(mnc_length, n))
            if "impu" in wanted:
                rec = _record_length(e, "ef-impu")
                j, n = _whole_content(e, "ef-impu")
                add("impu", i, ("ef-impu", j), n, _impu(mnc_length, rec, n))
            if "ims-domain" in wanted:
                j, n = _whole_content(e, "ef-domain")
                add("ims-domain", i, ("ef-domain", j), n,
                    _ims_domain(d.get("ims_domain"), mnc_length, n))
        elif kind == "df-5gs":
            if "suci" in wanted and "ef-suci-calc-info" in v:
                j, n = _whole_content(e, "ef-suci-calc-info")
                add("suci", i, ("ef-suci-calc-info", j), n, _suci(n))
            if "routing-indicator" in wanted and "ef-routing-indicator" in v:
                j, n = _content_index(e, "ef-routing-indicator", 4)
                add("routing-indicator", i, ("ef-routing-indicator", j), n,
                    _routing_indicator(str(d.get("routing_indicator", "0")), n))
        elif kind == "df-saip" and "suci" in wanted and "ef-suci-calc-info-usim" in v:
            j, n = _whole_content(e, "ef-suci-calc-info-usim")
            add("suci", i, ("ef-suci-calc-info-usim", j), n, _suci(n))
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
