"""What every stored record of simcore shares: the canonical JSON it is hashed and stored in,
and the rule that no secret enters it (the audit log, simcore.audit; the outbox, simcore.events;
stored order responses, simcore.esim_orders).

Canonical JSON: sorted keys, no spaces, UTF-8 as is (hashes are taken over this text, so it never
changes). Secrets are recognised by field name (SECRET_FIELDS) and by type (raw bytes), at any
depth; the error names the field, never its value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from simcore.errors import SimsmithError

# Field names that must never carry a value into the audit log or an outbox payload.
SECRET_FIELDS = frozenset(
    {
        "k", "ki", "eki", "opc", "eopc", "op", "key", "pin", "pin1", "pin2", "puk", "puk1",
        "puk2", "adm", "adm1", "adm2", "adm3", "adm4", "kic", "kid", "kik", "kic1", "kid1",
        "kik1", "transport_key", "component", "passphrase", "secret", "password",
    }
)


class SecretInAudit(SimsmithError):
    """Someone tried to put a secret into an audit record (or an outbox payload)."""


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def check_no_secrets(details: Mapping[str, Any], path: str = "details") -> None:
    for name, value in details.items():
        if name.lower() in SECRET_FIELDS:
            raise SecretInAudit(f"{path}.{name}: secret fields never enter the audit log")
        if isinstance(value, bytes | bytearray):
            raise SecretInAudit(f"{path}.{name}: raw bytes never enter the audit log")
        if isinstance(value, Mapping):
            check_no_secrets(value, f"{path}.{name}")
