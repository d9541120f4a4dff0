"""A stored SIM's keys handed to card and profile personalisation through the HSM: no clear key
leaves the HSM's methods (docs/hsm.md, `Hsm.patch_keys`).

- `SimKeyWriter` is the cards' `KeyWriter`: ADM1, Ki and OPc are written by the HSM
  (`Hsm.patch_keys`) into the buffer of the APDU being built, at that moment only.
- `package_patcher` is esim's `patch_keys`: the HSM writes Ki/OPc/OTA keys and the PIN/PUK/ADM
  fields straight into the package buffer; esim only ever sees placeholders.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cards.profile import CardKeys
from cards.secret import Secret
from esim.params import SubscriberParams
from hsm_sim.binding import wrapped_length
from hsm_sim.hsm import Hsm
from hsm_sim.keyref import KeyRef
from simcore.errors import SimsmithError
from simcore.keys import SimKeys

# esim parameter -> credential name, for the code fields of a profile package.
PACKAGE_CODES = {"pin1": "PIN1", "puk1": "PUK1", "pin2": "PIN2", "puk2": "PUK2", "adm1": "ADM1"}


@dataclass(frozen=True)
class _Slot:
    offset: int
    length: int



class SimKeyWriter:
    """cards.profile.KeyWriter for one stored SIM: the HSM writes each secret into the buffer the
    APDU is built from, when the driver asks for it."""

    def __init__(self, hsm: Hsm, keys: SimKeys, *, adm1: Secret | None = None) -> None:
        self._hsm = hsm
        self._keys = keys
        self._adm1 = adm1  # an ADM1 given by the operator instead of the stored one

    def __repr__(self) -> str:
        return f"SimKeyWriter({self._keys.iccid})"

    def _check(self, iccid: str) -> None:
        if iccid != self._keys.iccid:
            raise SimsmithError(f"keys of SIM {self._keys.iccid} asked for card {iccid}")

    def _secret(self, refs: Sequence[Any], label: str) -> Any:
        buf = bytearray(sum(_len(r) for r in refs))
        slots, pos = [], 0
        for r in refs:
            slots.append(_Slot(pos, _len(r)))
            pos += _len(r)
        try:
            self._hsm.patch_keys(buf, slots, list(refs), owner=self._keys.iccid)
            return Secret(bytes(buf), label)
        finally:
            buf[:] = bytes(len(buf))

    def adm1(self, iccid: str) -> Any:
        self._check(iccid)
        if self._adm1 is not None:
            return self._adm1
        return self._secret([self._keys.credential("ADM1")], "ADM1")

    def card_keys(self, iccid: str) -> Any:
        self._check(iccid)
        return CardKeys(self._secret([self._keys.ki], "Ki"), self._secret([self._keys.opc], "OPc"))


def _len(ref: KeyRef) -> int:
    """The wrapped key's length, from its blob's (either format, hsm_sim.binding)."""
    return wrapped_length(ref.blob)


def package_params(iccid: str, imsi: str) -> SubscriberParams:
    """esim parameters for a stored SIM. The code fields get placeholders that the HSM
    overwrites in `package_patcher`: esim never holds the SIM's PINs, PUKs or ADM1."""
    return SubscriberParams(iccid=iccid, imsi=imsi, pin1="0000", puk1="00000000", pin2="0000",
                            puk2="00000000", adm1="00000000")


def package_patcher(hsm: Hsm, keys: SimKeys, compiled: Any) -> Callable[[bytearray,
                                                                          Sequence[Any]], None]:
    """esim's `patch_keys` for one SIM: Ki, OPc and OTA keys at their key slots, and the
    PIN/PUK/ADM fields of `compiled` (an esim CompiledTemplate) over their placeholders, all in
    one HSM call."""
    code_slots: list[tuple[Any, str]] = [
        (_Slot(offset, f.length), PACKAGE_CODES[f.param])
        for f, offset in zip(compiled.fields, compiled.offsets, strict=True)
        if f.param in PACKAGE_CODES
    ]

    def patch(buf: bytearray, slots: Sequence[Any]) -> None:
        # A key can sit in several slots (Ki and OPc in the USIM's and the ISIM's akaParameter,
        # PIN1 in several pinCodes): the HSM unwraps each key once, into its first slot, and
        # the other slots get a copy of those bytes.
        first: dict[str, Any] = {}
        copies: list[tuple[Any, Any]] = []
        refs: list[Any] = []
        for slot, name in [*((s, s.name) for s in slots), *code_slots]:
            if name in first:
                copies.append((slot, first[name]))
                continue
            first[name] = slot
            refs.append(keys.ki if name == "ki" else keys.opc if name == "opc"
                        else keys.credential(name))
        hsm.patch_keys(buf, list(first.values()), refs, owner=keys.iccid)
        for slot, source in copies:
            if slot.length != source.length:
                raise SimsmithError(f"SIM {keys.iccid}: two slots of one key differ in length")
            buf[slot.offset:slot.offset + slot.length] = buf[source.offset:
                                                             source.offset + source.length]

    return patch
