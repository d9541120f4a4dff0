"""Profile templates: a reviewable TOML file naming a base SAIP package, the edits that make the
template (elements dropped, services, AKA algorithm) and the parameters personalised per subscriber.

    [template]   name, base (DER file beside the TOML), profile_type, drop (PE identifications),
                 services (eUICC-Mandatory-services), parameters (see esim.fields.PARAMETERS)
    [algorithm]  name (milenage | tuak | usim-test-algorithm), key_length, opc_length,
                 algorithm_options, rotation_constants, xoring_constants, number_of_keccak (hex
                 strings / integers; absent ones keep the SAIP defaults)
    [defaults]   spn, spn_display_condition, hplmn, oplmn, plmn_act, smsc, ehplmn, ims_domain,
                 mnc_length (2 or 3: written into the USIM's EF.AD, TS 31.102 §4.2.18, and used
                 to derive the ISIM identities; absent: EF.AD's value), routing_indicator
                 (EF.Routing_Indicator when the subscriber gives none; "0"), suci_calculation
                 ("me" | "usim": EF.UST services 124/125, TS 31.102 §4.2.8; absent: the base's)
    [file_sizes] "kind.file" = bytes: efFileSize changes to the base package's files, e.g.
                 "isim.ef-impi" = 80 (TS.48's 32 bytes cannot hold a TS 23.003 §13.3 IMPI)

Built-in templates live in esim/templates/ (`builtin_template("ts48")`).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from esim.errors import TemplateError
from esim.saip import ProfileElement, decode

ALGORITHM_IDS = {"milenage": 1, "tuak": 2, "usim-test-algorithm": 3}
_KEY_LENGTHS = {"milenage": ((16,), (16,)), "tuak": ((16, 32), (32,)),
                "usim-test-algorithm": ((16,), (16,))}


@dataclass(frozen=True)
class Algorithm:
    name: str
    key_length: int
    opc_length: int
    algorithm_options: bytes | None = None
    rotation_constants: bytes | None = None
    xoring_constants: bytes | None = None
    number_of_keccak: int | None = None


@dataclass
class Template:
    name: str
    base: bytes = field(repr=False)
    parameters: tuple[str, ...]
    algorithm: Algorithm
    profile_type: str | None = None
    drop: tuple[int, ...] = ()
    services: tuple[str, ...] | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    file_sizes: dict[str, int] = field(default_factory=dict)

    def base_elements(self) -> list[ProfileElement]:
        """The base package with the template's edits applied (a fresh copy each call)."""
        decoded = decode(self.base)
        missing = set(self.drop) - {e.identification for e in decoded}
        if missing:
            raise TemplateError(f"template {self.name}: drop names identifications "
                                f"{sorted(missing)} that the base package does not have")
        elements = [e for e in decoded if e.identification not in self.drop]
        self._check_rfm_targets(elements)
        header = elements[0].value
        if self.profile_type is not None:
            header["profileType"] = self.profile_type
        if self.services is not None:
            header["eUICC-Mandatory-services"] = {s: None for s in self.services}
        for e in elements:
            if e.kind == "akaParameter" and e.value["algoConfiguration"][0] == "algoParameter":
                self._apply_algorithm(e.value["algoConfiguration"][1])
        for where, size in self.file_sizes.items():
            self._resize(elements, where, size)
        if "mnc_length" in self.defaults:
            self._set_mnc_length(elements, self.defaults["mnc_length"])
        if "suci_calculation" in self.defaults:
            self._set_suci_calculation(elements, self.defaults["suci_calculation"])
        return elements

    def _set_suci_calculation(self, elements: list[ProfileElement], by: object) -> None:
        """EF.UST services 124 (subscription identifier privacy) and 125 (SUCI calculation by
        the USIM), TS 31.102 §4.2.8: "me" sets 124 and clears 125, "usim" sets both."""
        if by not in ("me", "usim"):
            raise TemplateError(f"template {self.name}: [defaults] suci_calculation must be "
                                "'me' (the phone) or 'usim' (the card)")
        for e in elements:
            if e.kind != "usim" or "ef-ust" not in e.value:
                continue
            items = e.file("ef-ust")
            i = next((i for i, (c, _) in enumerate(items) if c == "fillFileContent"), None)
            if i is None or len(items[i][1]) < 16:
                raise TemplateError(f"template {self.name}: the USIM's EF.UST has no room for "
                                    "services 124 and 125")
            content = bytearray(items[i][1])
            content[15] |= 1 << 3  # service 124: byte 16, b4
            if by == "usim":
                content[15] |= 1 << 4  # service 125: byte 16, b5
            else:
                content[15] &= ~(1 << 4) & 0xFF
            items[i] = ("fillFileContent", bytes(content))
            return
        raise TemplateError(f"template {self.name}: [defaults] suci_calculation needs the "
                            "USIM's EF.UST")

    def _check_rfm_targets(self, elements: list[ProfileElement]) -> None:
        """Every RFM application's ADF access (adfRFMAccess, SAIP §8.7.2; ETSI TS 102 226 §5)
        must aim at an application the profile still has: dropping an application (the CSIM)
        but keeping the remote-file-management instance for its ADF leaves an RFM entry for
        an AID no file answers to."""
        aids: list[bytes] = []
        for e in elements:  # the ADFs' names: each file's fileDescriptor with a dfName
            for value in e.value.values():
                for entry in value if isinstance(value, list) else ():
                    if (isinstance(entry, tuple) and entry[0] == "fileDescriptor"
                            and "dfName" in entry[1]):
                        aids.append(entry[1]["dfName"])
        for e in elements:
            access = e.value.get("adfRFMAccess") if e.kind == "rfm" else None
            if access is None:
                continue
            aid = access["adfAID"]
            if not any(a.startswith(aid) or aid.startswith(a) for a in aids):
                raise TemplateError(
                    f"template {self.name}: rfm#{e.identification} gives remote file access to "
                    f"ADF {aid.hex().upper()}, an application the profile does not have: drop "
                    "that rfm element too")

    def _resize(self, elements: list[ProfileElement], where: str, size: int) -> None:
        kind, _, file = where.partition(".")
        found = [e for e in elements if e.kind == kind and file in e.value]
        if not found:
            raise TemplateError(f"template {self.name}: [file_sizes] {where!r}: no such file")
        if not (isinstance(size, int) and 0 < size <= 0xFFFF):
            raise TemplateError(f"template {self.name}: [file_sizes] {where!r} must be 1 to "
                                "65535 bytes")
        for e in found:
            fcp = next(item for choice, item in e.file(file) if choice == "fileDescriptor")
            descriptor = fcp.get("fileDescriptor", b"")
            record = int.from_bytes(descriptor[2:4], "big") if len(descriptor) >= 4 else 0
            if record and size % record:
                raise TemplateError(f"template {self.name}: [file_sizes] {where!r}: {size} "
                                    f"bytes is not a whole number of {record}-byte records")
            used = sum(len(item) if choice == "fillFileContent" else item
                       for choice, item in e.file(file)
                       if choice in ("fillFileContent", "fillFileOffset"))
            if used > size:
                raise TemplateError(f"template {self.name}: [file_sizes] {where!r}: the base "
                                    f"package fills {used} bytes, more than {size}")
            fcp["efFileSize"] = size.to_bytes(1 if size < 0x100 else 2, "big")

    def _set_mnc_length(self, elements: list[ProfileElement], mnc_length: object) -> None:
        """EF.AD byte 4, low nibble: the number of MNC digits in the IMSI (TS 31.102 §4.2.18)."""
        if not isinstance(mnc_length, int) or mnc_length not in (2, 3):
            raise TemplateError(f"template {self.name}: [defaults] mnc_length must be 2 or 3")
        for e in elements:
            if e.kind != "usim" or "ef-ad" not in e.value:
                continue
            items = e.file("ef-ad")
            i = next((i for i, (c, _) in enumerate(items) if c == "fillFileContent"), None)
            if i is None or len(items[i][1]) < 4:
                raise TemplateError(f"template {self.name}: the USIM's EF.AD has no MNC length "
                                    "byte to set")
            content = bytearray(items[i][1])
            content[3] = (content[3] & 0xF0) | mnc_length
            items[i] = ("fillFileContent", bytes(content))

    def _apply_algorithm(self, algo: dict[str, Any]) -> None:
        a = self.algorithm
        algo["algorithmID"] = ALGORITHM_IDS[a.name]
        if a.algorithm_options is not None:
            algo["algorithmOptions"] = a.algorithm_options
        for member, value in (("rotationConstants", a.rotation_constants),
                              ("xoringConstants", a.xoring_constants),
                              ("numberOfKeccak", a.number_of_keccak)):
            if value is not None:
                algo[member] = value
        algo["key"] = bytes(a.key_length)
        algo["opc"] = bytes(a.opc_length)


def _hex(table: dict[str, Any], key: str, where: str) -> bytes | None:
    if key not in table:
        return None
    try:
        return bytes.fromhex(table[key])
    except (TypeError, ValueError):
        raise TemplateError(f"{where}: {key} must be a hex string") from None


def parse_template(text: str, base_dir: Path | None, where: str = "template") -> Template:
    """Read a template from TOML text; `base` is resolved against `base_dir`."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise TemplateError(f"{where}: not valid TOML: {e}") from None
    t, alg, defaults = doc.get("template", {}), doc.get("algorithm", {}), doc.get("defaults", {})
    for key in ("name", "base", "parameters"):
        if key not in t:
            raise TemplateError(f"{where}: [template] needs {key!r}")
    name = alg.get("name")
    if name not in ALGORITHM_IDS:
        raise TemplateError(f"{where}: [algorithm] name must be one of {sorted(ALGORITHM_IDS)}")
    key_lengths, opc_lengths = _KEY_LENGTHS[name]
    key_length = alg.get("key_length", key_lengths[-1])
    opc_length = alg.get("opc_length", opc_lengths[-1])
    if key_length not in key_lengths or opc_length not in opc_lengths:
        raise TemplateError(f"{where}: {name} takes keys of {key_lengths} bytes and OPc/TOPc of "
                            f"{opc_lengths} bytes, not {key_length} and {opc_length}")
    algorithm = Algorithm(
        name, key_length, opc_length, _hex(alg, "algorithm_options", where),
        _hex(alg, "rotation_constants", where), _hex(alg, "xoring_constants", where),
        alg.get("number_of_keccak"))
    base_path = (base_dir or Path(".")) / t["base"]
    try:
        base = base_path.read_bytes()
    except OSError as e:
        raise TemplateError(f"{where}: cannot read base package {base_path}: {e.strerror}"
                            ) from None
    services = t.get("services")
    file_sizes = doc.get("file_sizes", {})
    if not isinstance(file_sizes, dict):
        raise TemplateError(f"{where}: [file_sizes] must be a table of \"kind.file\" = bytes")
    return Template(
        name=t["name"], base=base, parameters=tuple(t["parameters"]), algorithm=algorithm,
        profile_type=t.get("profile_type"), drop=tuple(t.get("drop", ())),
        services=tuple(services) if services is not None else None, defaults=dict(defaults),
        file_sizes=dict(file_sizes))


def load_template(path: str | Path) -> Template:
    """Read a template file (TOML)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise TemplateError(f"{path}: {e.strerror}") from None
    return parse_template(text, path.parent, str(path))


def builtin_template(name: str) -> Template:
    """One of the templates shipped in esim/templates ('ts48', 'usim-isim-milenage')."""
    folder = resources.files("esim") / "templates"
    entry = folder / f"{name}.toml"
    if not entry.is_file():
        raise TemplateError(f"no built-in template {name!r}")
    with resources.as_file(folder) as directory:
        return parse_template(entry.read_text(encoding="utf-8"), Path(directory), name)


def builtin_template_names() -> list[str]:
    folder = resources.files("esim") / "templates"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))
