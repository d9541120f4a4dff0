"""One compiled function per asn1tools type object: the memo both SAIP codecs build on.

esim/saip/decoder.py and esim/saip/encoder.py each turn the compiled PEDefinitions schema
(TCA SAIP v2.3, asn1tools' BER/DER type objects) into plain closures, once per type object, so a
type reached from several members is compiled once. Recursive types are refused: the SAIP schema
has none, and a closure per recursion level could not be built ahead of time.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

F = TypeVar("F")


class TypeCompiler(Generic[F]):
    """Memoises `_make(node)` by type object; subclasses say what a compiled function is."""

    def __init__(self) -> None:
        self._done: dict[int, F] = {}
        self._active: set[int] = set()

    def compiled(self, node: Any) -> F:
        known = self._done.get(id(node))
        if known is not None:
            return known
        if id(node) in self._active:
            raise TypeError(f"recursive type {node.type_name}: not supported")
        self._active.add(id(node))
        made = self._make(node)
        self._active.discard(id(node))
        self._done[id(node)] = made
        return made

    def _make(self, node: Any) -> F:
        raise NotImplementedError
