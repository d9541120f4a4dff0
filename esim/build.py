"""Building a subscriber's SAIP profile package from a template (design §5): the entry point the
CLI and the service layer call. Keys come only through `patch_keys`, supplied by the HSM side.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from esim.compiled import CompiledTemplate, PatchKeys, compile_template
from esim.params import SubscriberParams
from esim.saip import ProfilePackage
from esim.saip.validate import validate
from esim.template import Template, builtin_template, load_template

_lock = threading.Lock()
_compiled: dict[int, tuple[Template, CompiledTemplate]] = {}
_named: dict[str, CompiledTemplate] = {}


def get_compiled(template: Template | CompiledTemplate | str | Path) -> CompiledTemplate:
    """A compiled template, compiled once per Template object, built-in name or file path."""
    if isinstance(template, CompiledTemplate):
        return template
    with _lock:
        if isinstance(template, Template):
            hit = _compiled.get(id(template))
            if hit is None or hit[0] is not template:
                hit = (template, compile_template(template))
                _compiled[id(template)] = hit
            return hit[1]
        key = str(template)
        if key not in _named:
            is_file = isinstance(template, Path) or key.endswith(".toml")
            t = load_template(key) if is_file else builtin_template(key)
            _named[key] = compile_template(t)
        return _named[key]


def build_package(template: Template | CompiledTemplate | str | Path, subscriber_params:
                  SubscriberParams, patch_keys: PatchKeys, *, verify: bool = False) -> bytes:
    """The subscriber's package (DER). `patch_keys(buf, slots)` writes Ki/OPc/OTA keys into
    `buf` at each KeySlot. With verify=True the result is decoded and validated as well (about
    a hundred times slower than building; use it on samples of a batch)."""
    der = get_compiled(template).personalise(subscriber_params, patch_keys)
    if verify:
        verify_package(der)
    return der


def verify_package(der: bytes) -> ProfilePackage:
    """Decode a package and run the release checks (esim.saip.validate); return it decoded."""
    package = ProfilePackage.from_der(der)
    validate(package.elements)
    return package


def build_packages(template: Template | CompiledTemplate | str | Path,
                   subscribers: Iterable[SubscriberParams],
                   patch_keys_for: Callable[[SubscriberParams], PatchKeys],
                   verify_every: int = 1000) -> Iterator[tuple[SubscriberParams, bytes]]:
    """A batch: (params, package) per subscriber, in order. `patch_keys_for(params)` gives the
    HSM's patch function for that subscriber's keys. Every `verify_every`-th package (the first
    included) is decoded and validated; 0 verifies none, 1 verifies all."""
    compiled = get_compiled(template)
    for i, params in enumerate(subscribers):
        der = compiled.personalise(params, patch_keys_for(params))
        if verify_every and i % verify_every == 0:
            verify_package(der)
        yield params, der
