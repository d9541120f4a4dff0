"""Compiled profile templates: the template's DER with every personalised field at a known
offset, so that a subscriber's package is a copy of those bytes with the fields overwritten.

This works because every personalised value is an OCTET STRING of fixed length (TCA SAIP §8):
the DER lengths around it never change. `compile_template` finds each field's offset by encoding
the element twice with different placeholder bytes and locating the difference.

Keys never pass through this module: `personalise` hands the buffer and the KeySlots (offset,
length, name) to a `patch_keys` callable from the HSM side, which writes Ki, OPc and OTA keys.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from esim.errors import TemplateError
from esim.fields import Encoder, Field, ef_ad_mnc_length, locate_fields, set_field
from esim.params import ParameterError, SubscriberParams
from esim.saip import ProfileElement, encode_element
from esim.saip.validate import validate
from esim.template import Template


@dataclass(frozen=True, slots=True)
class KeySlot:
    """Where the HSM writes one key: name ("ki", "opc", "ota-kvn01-kid02"), byte offset, length,
    and the profile element (kind#identification) it belongs to."""

    name: str
    offset: int
    length: int
    element: str


PatchKeys = Callable[[bytearray, Sequence[KeySlot]], None]


@dataclass(frozen=True, eq=False)
class CompiledTemplate:
    template: Template
    der: bytes
    fields: tuple[Field, ...]
    offsets: tuple[int, ...]  # byte offset of each field in `der`
    _patches: tuple[tuple[int, int, Encoder], ...]
    _key_slots: tuple[KeySlot, ...]
    # MNC digits of the IMSIs, as the profile's EF.AD states them (None: it states none). One
    # rule for every template: a subscriber whose IMSI range says otherwise is refused, as a
    # profile whose EF.AD (and derived IMS identities) splits the IMSI wrongly would be wrong.
    mnc_length: int | None = None

    def __repr__(self) -> str:
        return (f"CompiledTemplate({self.template.name!r}, {len(self.der)} bytes, "
                f"{len(self._patches)} fields, {len(self._key_slots)} key slots)")

    def key_slots(self) -> tuple[KeySlot, ...]:
        """Offsets and lengths of the key fields, for the HSM's patch_keys."""
        return self._key_slots

    def personalise(self, params: SubscriberParams, patch_keys: PatchKeys) -> bytes:
        """The subscriber's package: template bytes, fields patched, keys patched by the HSM."""
        if (params.mnc_length is not None and self.mnc_length is not None
                and params.mnc_length != self.mnc_length):
            raise ParameterError("mnc_length", f"is {params.mnc_length}, but the template's "
                                 f"EF.AD says {self.mnc_length} MNC digits (template "
                                 f"{self.template.name})")
        buf = bytearray(self.der)
        for start, end, encode in self._patches:
            buf[start:end] = encode(params)
        patch_keys(buf, self._key_slots)
        if len(buf) != len(self.der):
            raise TemplateError("a patch changed the package length; field or key length wrong")
        return bytes(buf)


def compile_template(template: Template) -> CompiledTemplate:
    """Build the template's package once and locate every personalised field in its DER."""
    elements = template.base_elements()
    validate(elements)  # structure, services, algorithm and key lengths; values come per subscriber
    fields = locate_fields(template, elements)
    for f in fields:
        set_field(elements, f, bytes(f.length))
    parts = [encode_element(e) for e in elements]
    starts = [0]
    for part in parts[:-1]:
        starts.append(starts[-1] + len(part))
    offsets = []
    for f in fields:
        set_field(elements, f, b"\xff" * f.length)
        probe = encode_element(elements[f.element])
        set_field(elements, f, bytes(f.length))
        base = parts[f.element]
        same_length = len(probe) == len(base)
        diff = [i for i in range(len(base)) if base[i] != probe[i]] if same_length else []
        if len(diff) != f.length or diff[-1] - diff[0] != f.length - 1:
            raise TemplateError(f"{f.where}: cannot locate the field in the DER")
        offsets.append(starts[f.element] + diff[0])
    patches = tuple((o, o + f.length, f.encode) for f, o in zip(fields, offsets, strict=True)
                    if f.encode is not None)
    key_slots = tuple(
        KeySlot(f.param, o, f.length, f.where.split(".", 1)[0])
        for f, o in zip(fields, offsets, strict=True) if f.encode is None)
    return CompiledTemplate(template, b"".join(parts), tuple(fields), tuple(offsets), patches,
                            key_slots, ef_ad_mnc_length(elements))


def reference_elements(template: Template, params: SubscriberParams) -> tuple[
        list[ProfileElement], list[Field]]:
    """The straightforward way: the template's decoded elements with the subscriber's fields set
    in the tree, key fields left as zero placeholders for the caller (HSM, test) to fill with
    `esim.fields.set_field`. Encoding them must give what `personalise` gives."""
    elements = template.base_elements()
    located = locate_fields(template, elements)
    for f in located:
        set_field(elements, f, bytes(f.length) if f.encode is None else f.encode(params))
    return elements, located
