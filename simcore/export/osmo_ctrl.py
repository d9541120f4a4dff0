"""A client for the Osmocom CTRL interface (text commands over IPA, protocol 0xEE extension 0x00;
Osmocom "Control interface" chapter of the OsmoHLR user manual).

    SET <id> <variable> <value>  ->  SET_REPLY <id> <variable> <value> | ERROR <id> <reason>
    GET <id> <variable>          ->  GET_REPLY <id> <variable> <value> | ERROR <id> <reason>

`pipeline()` sends many commands before reading their replies (matched by id), which is what
makes provisioning thousands of subscribers fast. TRAP messages from the peer are skipped.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry.trace import SpanKind

from simcore import telemetry
from simcore.errors import SimsmithError
from simcore.export import ipa
from simcore.export.ipa import CCM_PING, CCM_PONG, EXT_CTRL, PROTO_CCM, PROTO_OSMO, IpaSocket


class CtrlError(SimsmithError):
    """The CTRL peer answered ERROR (`reason` as it said), or the connection failed."""


@dataclass(frozen=True, slots=True)
class Reply:
    ok: bool
    value: str  # the value (GET/SET replies) or the error reason


class CtrlClient:
    def __init__(self, host: str, port: int = 4259, timeout: float = 5.0) -> None:
        self.ipa = IpaSocket(host, port, timeout)
        self.host, self.port = host, port
        self._ids = itertools.count(1)

    def close(self) -> None:
        self.ipa.close()

    def __enter__(self) -> CtrlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def pipeline(self, commands: Sequence[tuple[str, str, str | None]]) -> list[Reply]:
        """Send ("SET"|"GET", variable, value or None) commands at once; replies in order.

        Traced as one span `hlr.ctrl` naming the verbs, the first variable and the count —
        never a value (K and OPc travel in them)."""
        if not telemetry.tracing_enabled():
            return self._pipeline(commands)
        first = commands[0][1] if commands else ""
        with telemetry.span("hlr.ctrl", kind=SpanKind.CLIENT, attrs={
                "hlr.verbs": " ".join(sorted({c[0] for c in commands})),
                "hlr.variable": first, "hlr.commands": len(commands),
                "server.address": self.host, "server.port": self.port}) as sp:
            replies = self._pipeline(commands)
            failed = sum(not r.ok for r in replies)
            if sp is not None and failed:
                sp.set_attribute("hlr.errors", failed)
            return replies

    def _pipeline(self, commands: Sequence[tuple[str, str, str | None]]) -> list[Reply]:
        ids = []
        out = bytearray()
        for verb, var, value in commands:
            i = next(self._ids)
            ids.append(str(i))
            text = f"{verb} {i} {var}" + (f" {value}" if value is not None else "")
            out += ipa.osmo(EXT_CTRL, text.encode("ascii"))
        self.ipa.send(bytes(out))
        got: dict[str, Reply] = {}
        while len(got) < len(ids):
            proto, payload = self.ipa.recv()
            if proto == PROTO_CCM:
                if payload[:1] == bytes([CCM_PING]):
                    self.ipa.send(ipa.frame(PROTO_CCM, bytes([CCM_PONG])))
                continue
            if proto != PROTO_OSMO or payload[:1] != bytes([EXT_CTRL]):
                continue
            parts = payload[1:].decode("ascii", "replace").split(" ", 3)
            kind, cid = parts[0], parts[1] if len(parts) > 1 else ""
            if kind == "ERROR":
                got[cid] = Reply(False, " ".join(parts[2:]))
            elif kind in ("SET_REPLY", "GET_REPLY"):
                got[cid] = Reply(True, parts[3] if len(parts) > 3 else "")
        return [got[i] for i in ids]

    def set(self, var: str, value: str) -> str:
        r = self.pipeline([("SET", var, value)])[0]
        if not r.ok:
            raise CtrlError(f"SET {var}: {r.value}")
        return r.value

    def get(self, var: str) -> str:
        r = self.pipeline([("GET", var, None)])[0]
        if not r.ok:
            raise CtrlError(f"GET {var}: {r.value}")
        return r.value
