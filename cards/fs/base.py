"""Base class and registry for elementary-file codecs (ETSI TS 102 221 §8, §11.1.1.4.3).

An EF class carries its identifiers (FID, SFI, parent DF), structure, default size and its own
`examples` (raw hex, decoded value); `tests/cards/test_fs.py` runs every registered class's
examples both ways. Decoded values are plain JSON-ready data (str, int, list, dict, None); hex
strings appear only for opaque parts (AIDs, TMSI). `encode(value, size)` pads to `size` bytes.
"""

from __future__ import annotations

from typing import Any, ClassVar

REGISTRY: list[type[EF]] = []


class EncodeError(ValueError):
    """A value cannot be encoded into the EF (wrong form, or too long for the file)."""


class EF:
    """One elementary file. Subclasses set the ClassVars and override decode/encode."""

    fid: ClassVar[int]
    name: ClassVar[str]
    df: ClassVar[str]
    sfi: ClassVar[int | None] = None
    structure: ClassVar[str] = "transparent"  # or "linear_fixed"
    size: ClassVar[int] = 0  # transparent: file size; linear fixed: record length
    record_count: ClassVar[int] = 1
    examples: ClassVar[tuple[tuple[str, Any], ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "fid" in cls.__dict__ or "df" in cls.__dict__:
            REGISTRY.append(cls)

    @classmethod
    def decode(cls, data: bytes) -> Any:
        raise NotImplementedError

    @classmethod
    def encode(cls, value: Any, size: int | None = None) -> bytes:
        raise NotImplementedError

    @classmethod
    def label(cls) -> str:
        return f"{cls.df}/{cls.name}"


def pad(data: bytes, size: int | None, what: str, filler: int = 0xFF) -> bytes:
    if size is None:
        return data
    if len(data) > size:
        raise EncodeError(f"{what}: {len(data)} bytes do not fit in {size}")
    return data + bytes((filler,)) * (size - len(data))


def lookup(df: str, name: str) -> type[EF]:
    """The registered class for `name` under `df` (e.g. "ADF.USIM", "EF.IMSI")."""
    for cls in REGISTRY:
        if cls.df == df and cls.name == name:
            return cls
    raise KeyError(f"no file {name} under {df}")
