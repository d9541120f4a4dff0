"""One SAIP profile element (TCA eUICC Profile Package: Interoperable Format, §8): the CHOICE
alternative (`kind`, e.g. "usim") and its value as asn1tools gives it — SEQUENCEs as dicts,
SEQUENCE OF as lists, CHOICEs as (name, value) tuples, OCTET STRINGs as bytes.

Its repr shows kind and identification only, never values: PEs hold Ki, OPc, PINs, PUKs and keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Members whose values are secrets (PE-AKAParameter, PE-PINCodes, PE-PUKCodes, PE-CDMAParameter,
# PE-SecurityDomain KeyObject).
SECRET_MEMBERS = frozenset({
    "key", "opc", "pinValue", "pukValue", "keyData", "authenticationKey", "ssd",
    "hrpdAccessAuthenticationData", "simpleIPAuthenticationData", "mobileIPAuthenticationData",
})
MASK = "***"
# kind of an element whose CHOICE alternative this module does not know; value {"der": bytes}
UNKNOWN = "unknown"


@dataclass(eq=False, slots=True)
class ProfileElement:
    kind: str
    value: dict[str, Any]

    def __repr__(self) -> str:
        return f"ProfileElement({self.kind!r}, identification={self.identification})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProfileElement):
            return NotImplemented
        return self.kind == other.kind and self.value == other.value

    __hash__ = None  # type: ignore[assignment]

    @property
    def header_member(self) -> str | None:
        """The PEHeader member's name ('usim-header', 'pin-Header', …); None for the header."""
        if self.kind == "header":
            return None
        return next((k for k in self.value if k.lower().endswith("header")), None)

    @property
    def identification(self) -> int | None:
        """The PE's identification number (PEHeader); None for the ProfileHeader."""
        member = self.header_member
        return None if member is None else self.value[member]["identification"]

    @property
    def mandated(self) -> bool:
        member = self.header_member
        return member is not None and "mandated" in self.value[member]

    def file(self, name: str) -> list[tuple[str, Any]]:
        """The File value (list of CHOICEs) of a member such as 'ef-imsi'; KeyError if absent."""
        try:
            return self.value[name]  # type: ignore[no-any-return]
        except KeyError:
            raise KeyError(f"{self.kind} has no file {name!r}") from None

    def file_content(self, name: str) -> bytes:
        """The first fillFileContent of a file, e.g. the EF.IMSI bytes."""
        for choice, item in self.file(name):
            if choice == "fillFileContent":
                return item  # type: ignore[no-any-return]
        raise KeyError(f"{self.kind}.{name} has no fillFileContent")

    def as_choice(self) -> tuple[str, dict[str, Any]]:
        return (self.kind, self.value)


def masked(value: Any, show_secrets: bool = False) -> Any:
    """A JSON-ready copy of a PE value: bytes as hex, secret members replaced by '***'."""
    if isinstance(value, dict):
        return {k: (MASK if k in SECRET_MEMBERS and not show_secrets else masked(v, show_secrets))
                for k, v in value.items()}
    if isinstance(value, tuple):
        return {value[0]: masked(value[1], show_secrets)}
    if isinstance(value, list):
        return [masked(v, show_secrets) for v in value]
    if isinstance(value, bytes | bytearray):
        return value.hex().upper()
    return value
