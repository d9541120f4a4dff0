"""The recorded SGP.22 download session (tests/vectors/sgp22/download, see its README)."""

from __future__ import annotations

import base64
import functools
import json
from pathlib import Path
from typing import Any

DOWNLOAD = Path(__file__).resolve().parent.parent / "vectors" / "sgp22" / "download"


@functools.cache
def session() -> dict[str, Any]:
    return json.loads((DOWNLOAD / "session.json").read_text(encoding="utf-8"))


@functools.cache
def segments() -> dict[str, Any]:
    return json.loads((DOWNLOAD / "segments.json").read_text(encoding="utf-8"))


@functools.cache
def kdf_vectors() -> dict[str, Any]:
    return json.loads((DOWNLOAD / "kdf_vectors.json").read_text(encoding="utf-8"))


def data(name: str) -> bytes:
    return (DOWNLOAD / name).read_bytes()


def cert_pem(name: str) -> bytes:
    return (DOWNLOAD / "certs" / name).read_bytes()


def exchange(function: str) -> dict[str, Any]:
    """One ES9+ exchange by function name, e.g. 'InitiateAuthentication'."""
    for ex in session()["es9plus_exchanges"]:
        if ex["function"] == f"ES9+.{function}":
            return ex
    raise KeyError(function)


def field(function: str, name: str) -> bytes:
    """A base64 field of an exchange ('request.x' / 'response.x'), decoded from the wire body."""
    side, key = name.split(".", 1)
    body = json.loads(exchange(function)[f"{side}_body"])
    return base64.b64decode(body[key])


def h(value: str) -> bytes:
    return bytes.fromhex(value)
