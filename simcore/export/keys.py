"""SIMs leaving for a network element: which SIMs, and their Ki/OPc in the form the target may
receive — re-wrapped inside the HSM by `Hsm.export` (docs/hsm.md "export").

A target is an HSM export KEK. One marked insecure (`simsmith hsm kek add NAME --purpose export
--insecure-clear`) receives keys in clear — osmo-hlr, Open5GS and free5GC keep K/OPc in clear,
so only such a target can feed them directly, and every clear export is audited. Any other
target receives keys encrypted under its export key: RFC 5649 AES key wrap (`kwp`) or a vendor
EKI scheme (`aes128-ecb`, `aes128-cbc`, `3des2-ecb`, `3des3-ecb`), and the output names the
algorithm, the KEK and its KCV.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import col

from hsm_sim.hsm import Hsm
from hsm_sim.keyref import KeyRef
from simcore.db import read_session
from simcore.errors import InvalidInput, NotFound
from simcore.identifiers import Iccid
from simcore.inventory import batch_id
from simcore.models import Sim

SCHEMES = ("kwp", "aes128-ecb", "aes128-cbc", "3des2-ecb", "3des3-ecb")


@dataclass(frozen=True)
class KeyForm:
    """How keys reach a target: in clear, or encrypted (algorithm, KEK name and KCV)."""

    target: str
    scheme: str  # clear | kwp | an EKI scheme
    kcv: str | None = None

    @property
    def clear(self) -> bool:
        return self.scheme == "clear"

    def describe(self) -> dict[str, Any]:
        if self.clear:
            return {"algorithm": "clear", "target": self.target, "insecure_clear": True}
        algorithm = "AES key wrap with padding (RFC 5649)" if self.scheme == "kwp" else (
            f"EKI {self.scheme} (no padding)")
        return {"algorithm": algorithm, "scheme": self.scheme, "kek": self.target,
                "kek_kcv": self.kcv}


@dataclass(frozen=True, slots=True, repr=False)
class ExportedSim:
    """One SIM ready to send: K and OPc in the target's form (bytes; clear only for insecure
    targets). The repr names the SIM only."""

    iccid: str
    imsi: str
    msisdn: str | None
    k: bytes
    opc: bytes
    sqn: int = 0  # where the network's SQN starts (simcore.sqn_store.next_network_sqns)

    def __repr__(self) -> str:
        return f"ExportedSim({self.iccid}, imsi={self.imsi}, keys=<hidden>)"


def key_form(hsm: Hsm, target: str, scheme: str | None = None) -> KeyForm:
    """The form keys take for `target` (an export KEK); refuses a clear export to a target not
    marked insecure, and an encrypted one to a clear target."""
    info = next((k for k in hsm.kek_list() if k.name == target), None)
    if info is None or str(info.purpose) != "export":
        raise NotFound(f"no export target {target!r} in the HSM (simsmith hsm kek add {target} "
                       "--purpose export …)")
    if info.insecure_clear:
        if scheme not in (None, "clear"):
            raise InvalidInput("scheme", f"target {target!r} is a clear (insecure) target",
                               value=scheme, expected="clear")
        return KeyForm(target, "clear")
    scheme = scheme or "kwp"
    if scheme not in SCHEMES:
        raise InvalidInput("scheme", "not an export scheme for an encrypted target",
                           value=scheme, expected=", ".join(SCHEMES))
    return KeyForm(target, scheme, info.kcv)


def select_sims(engine: Engine, *, batch: str | None = None,
                iccids: Sequence[str] | None = None, state: str | None = None,
                page: int = 1000) -> Iterator[list[Sim]]:
    """SIMs with Ki and OPc, in ICCID order, a page at a time."""
    stmt = select(Sim).where(col(Sim.ki_ref).is_not(None), col(Sim.opc_ref).is_not(None),
                             col(Sim.imsi).is_not(None))
    if iccids:
        stmt = stmt.where(col(Sim.iccid).in_([Iccid.parse(i).digits for i in iccids]))
    if state:
        stmt = stmt.where(col(Sim.state) == state)
    after = ""
    with read_session(engine) as s:
        if batch:
            stmt = stmt.where(col(Sim.batch_id) == batch_id(s, batch))
    while True:
        with read_session(engine) as s:
            rows = list(s.execute(stmt.where(col(Sim.iccid) > after)
                                  .order_by(col(Sim.iccid)).limit(page)).scalars())
        if not rows:
            return
        yield rows
        after = rows[-1].iccid


def export_keys(hsm: Hsm, sims: Sequence[Sim], form: KeyForm,
                sqns: Mapping[str, int] | None = None) -> list[ExportedSim]:
    """K and OPc of each SIM in `form`, re-wrapped inside the HSM (one call for the page), and
    the SQN the network should start from (`sqns` by ICCID; 0 for a SIM not in it)."""
    refs = []
    for s in sims:
        refs += [KeyRef.from_token(s.ki_ref or ""), KeyRef.from_token(s.opc_ref or "")]
    keys = hsm.export(refs, form.target, form.scheme)
    sqns = sqns or {}
    return [ExportedSim(s.iccid, s.imsi or "", s.msisdn, keys[2 * i], keys[2 * i + 1],
                        sqns.get(s.iccid, 0))
            for i, s in enumerate(sims)]
