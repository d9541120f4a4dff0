"""A small reader for ASN.1 value notation (ITU-T X.680) as found in the TS.48 .asn1.txt files,
and a comparison of its values with what asn1tools decodes. Test helper only.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import asn1tools

from esim.saip.schema import defaults

_TOKEN = re.compile(r"""\s*(?:
    (?P<h>'[0-9A-Fa-f\s]*'H) | (?P<s>"[^"]*") | (?P<n>-?[0-9]+(?![0-9A-Za-z-])) |
    (?P<p>::=|[{}:,]) | (?P<i>[A-Za-z][A-Za-z0-9-]*) )""", re.X)


# Members renamed between SAIP 2.3 (the TS.48 files) and the module in esim/saip (v3.3.1);
# same position, same tag.
RENAMED = {"keyCompontents": "keyComponents"}


def _tokens(text: str) -> list[tuple[str, str]]:
    text = re.sub(r"--[^\n]*", "", text)
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            if text[pos:].strip() == "":
                break
            raise ValueError(f"cannot read value notation at {text[pos:pos + 30]!r}")
        pos = m.end()
        kind = m.lastgroup
        assert kind is not None
        value = m.group(kind)
        out.append((kind, RENAMED.get(value, value) if kind == "i" else value))
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.t = tokens
        self.i = 0

    def peek(self, k: int = 0) -> tuple[str, str]:
        return self.t[self.i + k] if self.i + k < len(self.t) else ("", "")

    def take(self) -> tuple[str, str]:
        tok = self.t[self.i]
        self.i += 1
        return tok

    def value(self) -> Any:
        kind, text = self.take()
        if kind == "h":
            return ("bytes", bytes.fromhex(re.sub(r"\s", "", text[1:-2])))
        if kind == "s":
            return ("str", text[1:-1])
        if kind == "n":
            return ("int", int(text))
        if kind == "i":
            if self.peek() == ("p", ":"):
                self.take()
                return ("choice", text, self.value())
            return ("ident", text)
        if text == "{":
            return self.braces()
        raise ValueError(f"unexpected {text!r}")

    def braces(self) -> Any:
        if all(k == "n" for k, _ in self.t[self.i:self.t.index(("p", "}"), self.i)]):
            numbers = []
            while self.peek() != ("p", "}"):
                numbers.append(self.take()[1])
            self.take()
            return ("oid", ".".join(numbers))
        items: list[Any] = []
        named = True
        while self.peek() != ("p", "}"):
            kind, text = self.peek()
            nxt = self.peek(1)
            if kind == "i" and nxt not in (("p", ":"), ("p", ","), ("p", "}")):
                self.take()
                items.append((text, self.value()))
            else:
                named = False
                items.append(self.value())
            if self.peek() == ("p", ","):
                self.take()
        self.take()
        return ("seq", dict(items)) if named and items else ("list", items)


def read_values(path: Path) -> list[tuple[str, Any]]:
    """The `valueN ProfileElement ::= kind : {…}` assignments of a file, as (kind, value)."""
    p = _Parser(_tokens(path.read_text(encoding="utf-8")))
    out = []
    while p.i < len(p.t):
        p.take()  # valueN
        p.take()  # ProfileElement
        assert p.take() == ("p", "::=")
        v = p.value()
        assert v[0] == "choice"
        out.append((v[1], v[2]))
    return out


def named_numbers(asn_file: Path) -> dict[str, int]:
    """Every named number of every INTEGER in an ASN.1 module (pinAppl1 -> 1, …)."""
    found: dict[str, int] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for name, number in (node.get("named-numbers") or {}).items():
                found[name] = number
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(asn1tools.parse_files([str(asn_file)]))
    return found


def _default(member: str, siblings: dict[str, Any]) -> Any:
    found = {t: v for (t, m), v in defaults().items() if m == member}
    if len(found) > 1:  # maxNumOfAttemps-retryNumLeft: 51 for PINs, 170 for PUKs
        found = {t: v for t, v in found.items() if t == ("PUKConfiguration" if "pukValue" in
                                                          siblings else "PINConfiguration")}
    assert len(found) == 1, f"no single DEFAULT for {member}"
    value = next(iter(found.values()))
    if member == "sqnInit":  # DEFAULT '000000000000'H applies to each of the 32 elements
        return [bytes.fromhex(value[2:]) if isinstance(value, str) else value] * 32
    return value


def compare(decoded: Any, parsed: Any, names: dict[str, int], path: str = "") -> None:
    """Assert that an asn1tools value equals a parsed value-notation value."""
    tag = parsed[0]
    if isinstance(decoded, tuple):
        assert tag == "choice" and decoded[0] == parsed[1], f"{path}: choice {decoded[0]}"
        compare(decoded[1], parsed[2], names, f"{path}.{decoded[0]}")
    elif isinstance(decoded, dict):
        members = parsed[1] if tag == "seq" else {}
        assert tag in ("seq", "list") and set(decoded) <= set(members), (
            f"{path}: members {sorted(decoded)} not all in {sorted(members)}")
        for k, v in members.items():
            if k in decoded:
                compare(decoded[k], v, names, f"{path}.{k}")
            else:  # absent from the DER: the notation shows the ASN.1 DEFAULT value
                compare(_default(k, members), v, names, f"{path}.{k} (DEFAULT)")
    elif isinstance(decoded, list):
        assert tag == "list" and len(decoded) == len(parsed[1]), f"{path}: list length"
        for i, (d, p) in enumerate(zip(decoded, parsed[1], strict=True)):
            compare(d, p, names, f"{path}[{i}]")
    elif decoded is None:
        assert parsed == ("ident", "NULL"), f"{path}: NULL"
    elif isinstance(decoded, bytes):
        assert parsed == ("bytes", decoded), f"{path}: bytes differ"
    elif isinstance(decoded, int):
        expected = names[parsed[1]] if tag == "ident" else parsed[1]
        assert decoded == expected, f"{path}: {decoded} != {parsed[1]}"
    elif isinstance(decoded, str):
        assert tag in ("str", "oid") and parsed[1] == decoded, f"{path}: {decoded!r}"
    else:
        raise AssertionError(f"{path}: unexpected decoded type {type(decoded).__name__}")
