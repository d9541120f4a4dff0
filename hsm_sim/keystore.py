"""The soft backend's keystore file: master key check values and KEKs wrapped under the master.

`<directory>/keystore.json` (mode 0600), written atomically. It never holds a clear key: the master
key is only described (source, component count, KCVs, scrypt parameters in dev mode) and each
named KEK is AES-KWP-wrapped (RFC 5649) under a key derived from the master for that KEK's name
and purpose. See docs/hsm.md "Keystore".
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hsm_sim.errors import DuplicateKey, HsmError, NoSuchKey
from hsm_sim.hsm import KekInfo, KekPurpose

__all__ = ["FORMAT", "KekRecord", "Keystore"]

FORMAT = "simsmith-hsm-keystore/1"
FILENAME = "keystore.json"


@dataclass
class KekRecord:
    name: str
    purpose: str
    kcv: str
    legacy_kcv: str
    blob: str | None = None  # base64 of the KWP-wrapped KEK; None when derived or clear target
    insecure_clear: bool = False
    derived: bool = False
    created: str = ""

    def info(self) -> KekInfo:
        return KekInfo(
            self.name, KekPurpose(self.purpose), self.kcv, self.legacy_kcv,
            self.insecure_clear, self.derived,
        )

    def blob_bytes(self) -> bytes:
        if self.blob is None:
            raise HsmError(f"KEK {self.name} has no stored key")
        return base64.b64decode(self.blob)


@dataclass
class Keystore:
    directory: Path
    master_source: str  # "components" or "dev-passphrase"
    master_components: int
    master_kcv: str
    master_legacy_kcv: str
    scrypt: dict[str, Any] | None = None
    keks: dict[str, KekRecord] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.directory / FILENAME

    @classmethod
    def exists(cls, directory: Path) -> bool:
        return (directory / FILENAME).is_file()

    @classmethod
    def load(cls, directory: Path) -> Keystore:
        path = directory / FILENAME
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise NoSuchKey(f"no HSM keystore at {path}: run `simsmith hsm init` first") from None
        except json.JSONDecodeError as e:
            raise HsmError(f"HSM keystore {path} is not valid JSON (line {e.lineno})") from None
        if data.get("format") != FORMAT:
            raise HsmError(f"HSM keystore {path} has format {data.get('format')!r}, not {FORMAT}")
        m = data["master"]
        keks = {k["name"]: KekRecord(**k) for k in data.get("keks", [])}
        return cls(
            directory, m["source"], m["components"], m["kcv"], m["legacy_kcv"], m.get("scrypt"),
            keks,
        )

    def save(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        data = {
            "format": FORMAT,
            "master": {
                "source": self.master_source,
                "components": self.master_components,
                "kcv": self.master_kcv,
                "legacy_kcv": self.master_legacy_kcv,
                "scrypt": self.scrypt,
            },
            "keks": [asdict(k) for k in self.keks.values()],
        }
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, self.path)

    def kek(self, name: str) -> KekRecord:
        try:
            return self.keks[name]
        except KeyError:
            raise NoSuchKey(f"no KEK named {name!r}") from None

    def add(self, record: KekRecord) -> None:
        if record.name in self.keks:
            raise DuplicateKey(f"a KEK named {record.name!r} already exists")
        self.keks[record.name] = record
