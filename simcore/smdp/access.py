"""Who may call which ES2+ function, for which operator (GSMA SGP.22 v2.5 §5.3; §2.6.6 mutual
authentication of the ES2+ peers; the functionRequesterIdentifier of §6.5.1.1).

ES2+ has two roles, served by separate listeners:

- **order** — the SM-DP+ functions an *operator* calls: DownloadOrder (§5.3.1), ConfirmOrder
  (§5.3.2), CancelOrder (§5.3.3), ReleaseProfile (§5.3.4);
- **notify** — HandleDownloadProgressInfo (§5.3.5), which an *SM-DP+* calls on the operator's
  receiver.

A peer is the identity its client certificate names (the subject's CN; or an HTTP Basic
credential's name behind a TLS-terminating proxy). The access table says, per identity, which
roles it has and which operators (functionRequesterIdentifiers) it may speak for:

    # SIMSMITH_ES2PLUS_ACCESS=/etc/simsmith/es2plus-access.toml
    [[peer]]
    identity = "crm.operator-a.example"     # certificate CN
    roles = ["order"]
    operators = ["1.3.6.1.4.1.99999.1"]     # default: the identity itself

    [[peer]]
    identity = "es2.smdp-vendor.example"
    roles = ["notify"]

With a table, an identity not in it is refused, as is a role or an operator it was not given
(1.1 / 1.2 Function Requester – Not Allowed). Without one, every authenticated peer has both
roles and speaks for the operator named like itself (the listeners still keep the roles apart).

Profiles belong to operators (simcore.smdp.stock): DownloadOrder by another operator neither
sees nor takes them.

ES2+ runs over HTTPS only. `SIMSMITH_ES2PLUS_ALLOW_PLAIN_HTTP=1` lets the routes answer plain
HTTP (HTTP Basic included) for a lab; it is logged loudly at every start.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, model_validator

from simcore.config import Settings, get_settings
from simcore.errors import InvalidInput, SimsmithError

log = logging.getLogger(__name__)


class Role(StrEnum):
    ORDER = "order"
    NOTIFY = "notify"


FUNCTION_ROLES: Mapping[str, Role] = {
    "DownloadOrder": Role.ORDER, "ConfirmOrder": Role.ORDER, "CancelOrder": Role.ORDER,
    "ReleaseProfile": Role.ORDER, "HandleDownloadProgressInfo": Role.NOTIFY,
}
ALL_ROLES = frozenset(Role)


class AccessDenied(SimsmithError):
    """An authenticated peer asked for a function or an operator it was not given."""


class AccessTableError(InvalidInput):
    """The access table cannot be used (file, line and what was expected in the message)."""


@dataclass(frozen=True)
class Peer:
    """One certificate identity: its roles and the operators (requester identifiers) it may
    speak for."""

    identity: str
    roles: frozenset[Role]
    operators: frozenset[str]


@dataclass(frozen=True)
class AccessPolicy:
    """The access table. `peers is None`: no table (every authenticated peer has every role and
    speaks for itself and for what `extra_operators` grants it)."""

    peers: Mapping[str, Peer] | None = None
    extra_operators: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @property
    def configured(self) -> bool:
        return self.peers is not None

    def peer(self, identity: str) -> Peer | None:
        if self.peers is None:
            return Peer(identity, ALL_ROLES,
                        frozenset({identity}) | self.extra_operators.get(identity, frozenset()))
        return self.peers.get(identity)

    def check_role(self, identity: str, function: str) -> None:
        """Raise AccessDenied unless `identity` has the role of `function`."""
        role = FUNCTION_ROLES[function]
        peer = self.peer(identity)
        if peer is None:
            raise AccessDenied(f"client {identity!r} is not in the ES2+ access table")
        if role not in peer.roles:
            raise AccessDenied(f"client {identity!r} may not call {function} (role {role.value};"
                               f" it has {', '.join(sorted(peer.roles)) or 'none'})")

    def may_act_as(self, identity: str, requester: str) -> bool:
        """Whether `identity` may use functionRequesterIdentifier `requester`."""
        peer = self.peer(identity)
        return peer is not None and requester in peer.operators


def load_access_table(path: Path) -> AccessPolicy:
    """Read a TOML access table (module docstring). Every fault names the file and the entry."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise AccessTableError(str(path), f"cannot read: {e.strerror}",
                               expected="a readable TOML file") from None
    except tomllib.TOMLDecodeError as e:
        raise AccessTableError(str(path), str(e), expected="TOML") from None
    return parse_access_table(data, source=str(path))


def parse_access_table(data: Mapping[str, Any], *, source: str = "access table"
                       ) -> AccessPolicy:
    unknown = set(data) - {"peer"}
    if unknown:
        raise AccessTableError(f"{source}: {sorted(unknown)[0]}", "unknown key",
                               expected="[[peer]] tables only")
    entries = data.get("peer", [])
    if not isinstance(entries, list):
        raise AccessTableError(f"{source}: peer", "not an array of tables",
                               expected="[[peer]] entries")
    peers: dict[str, Peer] = {}
    for n, entry in enumerate(entries, 1):
        where = f"{source}: peer #{n}"
        if not isinstance(entry, dict):
            raise AccessTableError(where, "not a table", expected="[[peer]] with keys")
        extra = set(entry) - {"identity", "roles", "operators"}
        if extra:
            raise AccessTableError(f"{where}.{sorted(extra)[0]}", "unknown key",
                                   expected="identity, roles, operators")
        identity = entry.get("identity")
        if not isinstance(identity, str) or not identity.strip():
            raise AccessTableError(f"{where}.identity", "missing or empty",
                                   expected="the client certificate's CN")
        roles = _strings(entry.get("roles"), f"{where}.roles", "a list of roles")
        try:
            role_set = frozenset(Role(r) for r in roles)
        except ValueError:
            bad = next(r for r in roles if r not in {x.value for x in Role})
            raise AccessTableError(f"{where}.roles", f"unknown role {bad!r}",
                                   expected="order or notify") from None
        if not role_set:
            raise AccessTableError(f"{where}.roles", "empty", expected="order and/or notify")
        operators = entry.get("operators")
        ops = frozenset(_strings(operators, f"{where}.operators",
                                 "a list of functionRequesterIdentifiers")
                        ) if operators is not None else frozenset({identity})
        if identity in peers:
            raise AccessTableError(f"{where}.identity", f"{identity!r} listed twice",
                                   expected="one entry per identity")
        peers[identity] = Peer(identity, role_set, ops)
    return AccessPolicy(peers)


def _strings(value: Any, where: str, expected: str) -> list[str]:
    if value is None:
        raise AccessTableError(where, "missing", expected=expected)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise AccessTableError(where, "not a list of non-empty strings", expected=expected)
    return list(value)


class Es2PlusAccessSettings(BaseModel):
    """SIMSMITH_ES2PLUS_ACCESS (the table's path) and SIMSMITH_ES2PLUS_ALLOW_PLAIN_HTTP, a view
    of the settings tree (simcore.config)."""

    access: Path | None = None
    allow_plain_http: bool = False

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Es2PlusAccessSettings:
        """From `settings`, or the environment now."""
        return cls(**cls._values(settings if settings is not None else get_settings()))

    @staticmethod
    def _values(s: Settings) -> dict[str, Any]:
        return dict(access=s.es2plus_access, allow_plain_http=s.es2plus_allow_plain_http)

    @model_validator(mode="before")
    @classmethod
    def _environment_fills_the_rest(cls, data: Any) -> Any:
        # Fields not given come from the environment, as with the settings class it replaced.
        if isinstance(data, dict) and not cls.model_fields.keys() <= data.keys():
            return {**cls._values(get_settings()), **data}
        return data


def configured_policy(extra_operators: Mapping[str, frozenset[str]] | None = None
                      ) -> AccessPolicy:
    """The policy from the environment: the table at SIMSMITH_ES2PLUS_ACCESS, else none
    (everyone speaks for itself, plus `extra_operators`, the SIMSMITH_ES2PLUS_REQUESTERS
    grants)."""
    settings = Es2PlusAccessSettings.from_settings()
    if settings.access is not None:
        return load_access_table(settings.access)
    return AccessPolicy(None, dict(extra_operators or {}))


def warn_plain_http(where: str) -> None:
    log.warning("!!! LAB FLAG SIMSMITH_ES2PLUS_ALLOW_PLAIN_HTTP: ES2+ on %s answers plain HTTP; "
                "credentials and profile orders travel unencrypted. Never in production. !!!",
                where)


__all__ = ["ALL_ROLES", "FUNCTION_ROLES", "AccessDenied", "AccessPolicy", "AccessTableError",
           "Es2PlusAccessSettings", "Peer", "Role", "configured_policy", "load_access_table",
           "parse_access_table", "warn_plain_http"]
