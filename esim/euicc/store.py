"""The virtual eUICC's non-volatile state (GSMA SGP.22 v2.x §2.4 ISD-R / ISD-P, §5.7.9
notifications kept until ES10b.RemoveNotificationFromList).

One JSON state file, written atomically with mode 0600: like a card's memory it holds the
installed profiles' packages (and so their keys), which is why it is never world-readable.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# ISD-P AIDs: the ISD-R's RID/PIX prefix with the ISD-P number (SGP.02/SGP.22 convention
# A0000005591010FFFFFFFF89 00 00 10 00, + n).
ISDP_AID_PREFIX = bytes.fromhex("A0000005591010FFFFFFFF8900")
FIRST_ISDP = 0x1000


@dataclass
class InstalledProfile:
    """One ISD-P with its profile. `upp` (hex) is the clear SAIP package: keys inside."""

    iccid: str  # the ICCID's digits
    isdp_aid: str
    state: str  # "disabled" | "enabled"
    service_provider_name: str
    profile_name: str
    profile_class: int
    nickname: str
    notification_address: str
    upp: str = field(repr=False)
    # NotificationEvent name -> address, from StoreMetadata's notificationConfigurationInfo
    notify: dict[str, str] = field(default_factory=dict)
    # the key identifier (hex) of the CI the download session authenticated under: the
    # profile's enable/disable/delete notifications are signed with the eUICC's chain to it,
    # the one its SM-DP+ verified (empty: installed before this was kept, the default chain)
    ci_key_id: str = ""

    def __repr__(self) -> str:
        return f"InstalledProfile(iccid={self.iccid}, state={self.state})"


@dataclass
class PendingNotification:
    seq_number: int
    event: str  # NotificationEvent name (install, enable, disable, delete)
    notification_address: str
    iccid: str | None
    der: str  # the PendingNotification as the eUICC signed it (hex)


@dataclass
class EuiccState:
    profiles: list[InstalledProfile] = field(default_factory=list)
    notifications: list[PendingNotification] = field(default_factory=list)
    next_seq_number: int = 1
    next_isdp: int = FIRST_ISDP
    default_dp_address: str = ""
    root_ds_address: str = ""

    def profile(self, iccid: str) -> InstalledProfile | None:
        for p in self.profiles:
            if p.iccid == iccid:
                return p
        return None

    def enabled(self) -> InstalledProfile | None:
        for p in self.profiles:
            if p.state == "enabled":
                return p
        return None

    def allocate_isdp(self) -> bytes:
        aid = ISDP_AID_PREFIX + self.next_isdp.to_bytes(3, "big")
        self.next_isdp += 1
        return aid

    def allocate_seq_number(self) -> int:
        seq = self.next_seq_number
        self.next_seq_number += 1
        return seq

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EuiccState:
        return cls(profiles=[InstalledProfile(**p) for p in data.get("profiles", [])],
                   notifications=[PendingNotification(**n)
                                  for n in data.get("notifications", [])],
                   next_seq_number=int(data.get("next_seq_number", 1)),
                   next_isdp=int(data.get("next_isdp", FIRST_ISDP)),
                   default_dp_address=str(data.get("default_dp_address", "")),
                   root_ds_address=str(data.get("root_ds_address", "")))


class StateFile:
    """Load and save an EuiccState; `path=None` keeps it in memory only (tests, benches)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def load(self) -> EuiccState:
        if self.path is None or not self.path.exists():
            return EuiccState()
        return EuiccState.from_json(json.loads(self.path.read_text(encoding="utf-8")))

    def save(self, state: EuiccState) -> None:
        if self.path is None:
            return
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(state.to_json(), fh)
        os.replace(tmp, self.path)
