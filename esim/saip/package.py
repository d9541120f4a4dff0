"""A decoded SAIP profile package with typed access to what operators look for: ICCID, IMSI,
AKA algorithm, mandatory services (TCA eUICC Profile Package: Interoperable Format §8).
"""

from __future__ import annotations

from dataclasses import dataclass

from esim.errors import EsimError
from esim.saip.codec import decode, encode
from esim.saip.coding import iccid_from_ef, iccid_from_header, imsi_from_ef
from esim.saip.element import ProfileElement

ALGORITHMS = {1: "milenage", 2: "tuak", 3: "usim-test-algorithm"}


class NoSuchElement(EsimError, LookupError):
    """The package has no profile element (or not exactly one) of the kind asked for."""


@dataclass(eq=False)
class ProfilePackage:
    elements: list[ProfileElement]

    @classmethod
    def from_der(cls, data: bytes) -> ProfilePackage:
        return cls(decode(data))

    def to_der(self) -> bytes:
        return encode(self.elements)

    def __repr__(self) -> str:
        return f"ProfilePackage({len(self.elements)} elements)"

    def all(self, kind: str) -> list[ProfileElement]:
        """Every element of a kind, in package order (possibly none)."""
        return [e for e in self.elements if e.kind == kind]

    def one(self, kind: str) -> ProfileElement:
        """The single element of a kind; NoSuchElement when there are none or several."""
        found = self.all(kind)
        if len(found) != 1:
            raise NoSuchElement(f"expected one {kind!r} element, found {len(found)}")
        return found[0]

    @property
    def iccid(self) -> str:
        """ICCID from the ProfileHeader."""
        return iccid_from_header(self.one("header").value["iccid"])

    @property
    def ef_iccid(self) -> str:
        """ICCID from EF.ICCID in the MF element."""
        return iccid_from_ef(self.one("mf").file_content("ef-iccid"))

    @property
    def imsis(self) -> list[str]:
        """IMSI of each USIM, in order."""
        return [imsi_from_ef(e.file_content("ef-imsi")) for e in self.all("usim")]

    @property
    def imsi(self) -> str:
        """IMSI of the (single) USIM."""
        return imsi_from_ef(self.one("usim").file_content("ef-imsi"))

    @property
    def algorithms(self) -> list[str]:
        """AKA algorithm of each akaParameter element ('mapping' when it maps another's)."""
        names = []
        for e in self.all("akaParameter"):
            choice, value = e.value["algoConfiguration"]
            if choice == "algoParameter":
                names.append(ALGORITHMS.get(value["algorithmID"], str(value["algorithmID"])))
            else:  # an alternative this schema does not know decodes as (None, None)
                names.append("mapping" if choice == "mappingParameter" else "unknown")
        return names

    @property
    def services(self) -> list[str]:
        """The eUICC-Mandatory-services of the ProfileHeader."""
        return list(self.one("header").value["eUICC-Mandatory-services"])
