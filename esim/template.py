"""Profile templates: a reviewable TOML file naming a base SAIP package, the edits that make the
template (elements dropped, services, AKA algorithm) and the parameters personalised per subscriber.

    [template]   name, base (DER file beside the TOML), profile_type, drop (PE identifications),
                 services (eUICC-Mandatory-services), parameters (see esim.fields.PARAMETERS)
    [algorithm]  name (milenage | tuak | usim-test-algorithm), key_length, opc_length,
                 algorithm_options, rotation_constants, xoring_constants, number_of_keccak (hex
                 strings / integers; absent ones keep the SAIP defaults)
    [defaults]   spn, spn_display_condition, hplmn, oplmn, plmn_act, smsc

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

    def base_elements(self) -> list[ProfileElement]:
        """The base package with the template's edits applied (a fresh copy each call)."""
        decoded = decode(self.base)
        missing = set(self.drop) - {e.identification for e in decoded}
        if missing:
            raise TemplateError(f"template {self.name}: drop names identifications "
                                f"{sorted(missing)} that the base package does not have")
        elements = [e for e in decoded if e.identification not in self.drop]
        header = elements[0].value
        if self.profile_type is not None:
            header["profileType"] = self.profile_type
        if self.services is not None:
            header["eUICC-Mandatory-services"] = {s: None for s in self.services}
        for e in elements:
            if e.kind == "akaParameter" and e.value["algoConfiguration"][0] == "algoParameter":
                self._apply_algorithm(e.value["algoConfiguration"][1])
        return elements

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
    return Template(
        name=t["name"], base=base, parameters=tuple(t["parameters"]), algorithm=algorithm,
        profile_type=t.get("profile_type"), drop=tuple(t.get("drop", ())),
        services=tuple(services) if services is not None else None, defaults=dict(defaults))


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
