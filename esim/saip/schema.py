"""The SAIP ASN.1 module (TCA eUICC Profile Package: Interoperable Format, PEDefinitions),
compiled once with asn1tools for DER and cached.

Fidelity over canonical form: published packages (the GSMA TS.48 profiles among them) encode
some members explicitly even where the value equals the ASN.1 DEFAULT (e.g. `lcsi '05'H`), which
asn1tools would drop on re-encoding and fill in on decoding. The compiled schema therefore treats
every DEFAULT member as OPTIONAL: decoding yields exactly the members present, encoding writes
exactly the members given, so a decode/encode round trip is byte-identical. `DEFAULTS` keeps the
ASN.1 default values for readers that want them.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import asn1tools

from esim.saip.decoder import ElementDecoder
from esim.saip.encoder import ElementEncoder

MODULE_FILE = "PEDefinitions.asn"


@functools.cache
def _compiled() -> tuple[Any, dict[tuple[str, str], Any]]:
    return build()


def build() -> tuple[Any, dict[tuple[str, str], Any]]:
    """Compile the module afresh: (asn1tools specification, DEFAULTs). esim.saip.decoder and
    esim.saip.encoder are built from its type objects; its own codec serves to check them."""
    text = resources.files("esim.saip").joinpath(MODULE_FILE).read_text(encoding="utf-8")
    spec = asn1tools.compile_string(text, "der")
    defaults: dict[tuple[str, str], Any] = {}
    seen: set[int] = set()

    def walk(node: Any, parent: str) -> None:
        if node is None or id(node) in seen:
            return
        seen.add(id(node))
        if getattr(node, "default", None) is not None:
            defaults[(parent, node.name)] = node.default
            node.default = None
            node.optional = True
        here = getattr(node, "type_name", "") or parent
        for attr in ("root_members", "members", "additions"):
            for member in getattr(node, attr, None) or ():
                for m in member if isinstance(member, list) else (member,):
                    walk(m, here)
        for attr in ("element_type", "inner"):
            walk(getattr(node, attr, None), here)

    walk(spec.types["ProfileElement"].type, "ProfileElement")
    return spec, defaults


def spec() -> Any:
    """The compiled asn1tools specification (DER), built on first use."""
    return _compiled()[0]


@functools.cache
def decoder() -> ElementDecoder:
    """The ProfileElement decoder (esim.saip.decoder) over the compiled schema, built once."""
    return ElementDecoder(spec().types["ProfileElement"].type)


@functools.cache
def encoder() -> ElementEncoder:
    """The ProfileElement encoder (esim.saip.encoder) over the compiled schema, built once."""
    return ElementEncoder(spec().types["ProfileElement"].type)


def default_of(type_name: str, member: str) -> Any:
    """The ASN.1 DEFAULT of a member, e.g. ('Fcp', 'lcsi') -> b'\\x05'; KeyError if none."""
    try:
        return _compiled()[1][(type_name, member)]
    except KeyError:
        raise KeyError(f"{type_name}.{member} has no DEFAULT") from None


def defaults() -> dict[tuple[str, str], Any]:
    """Every DEFAULT of the module, keyed by (type name, member name)."""
    return dict(_compiled()[1])
