"""Export runs: SIMs from the store to osmo-hlr (CTRL) or to a file, keys re-wrapped by the HSM
for the named target, one audit event per run (counts, target, whether keys left in clear —
never a key).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from hsm_sim.hsm import Hsm
from simcore import audit
from simcore.db import transaction
from simcore.errors import InvalidInput
from simcore.export.gsup import GsupClient
from simcore.export.keys import KeyForm, export_keys, key_form, select_sims
from simcore.export.osmo_ctrl import CtrlClient
from simcore.export.osmo_hlr import SubscriberResult, provision
from simcore.export.writers import FileWriter
from simcore.log import get_logger
from simcore.sqn_store import next_network_sqns

log = get_logger(__name__)
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Selection:
    batch: str | None = None
    iccids: Sequence[str] | None = None
    state: str | None = None


@dataclass
class ExportReport:
    target: str
    destination: str
    form: KeyForm
    count: int = 0
    created: int = 0
    updated: int = 0
    failed: int = 0
    seconds: float = 0.0
    results: list[SubscriberResult] = field(default_factory=list)

    def as_dict(self, with_results: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "target": self.target, "destination": self.destination,
            "keys": self.form.describe(), "count": self.count, "created": self.created,
            "updated": self.updated, "failed": self.failed, "seconds": round(self.seconds, 3)}
        if with_results:
            out["subscribers"] = [r.as_dict() for r in self.results]
        return out


def _audit(engine: Engine, report: ExportReport, action: str, actor: str) -> None:
    details = {"target": report.target, "destination": report.destination,
               "count": report.count, "created": report.created, "updated": report.updated,
               "failed": report.failed, **report.form.describe()}
    with transaction(engine) as s:
        audit.append(s, actor=actor, action=action, subject_type="export",
                     subject_id=report.target, details=details)


def export_osmo_hlr(engine: Engine, hsm: Hsm, *, target: str, host: str, port: int = 4259,
                    selection: Selection = Selection(), actor: str = "cli", page: int = 500,
                    progress: Progress | None = None, gsup_port: int | None = 4222
                    ) -> ExportReport:
    """Provision the selected SIMs into osmo-hlr over CTRL (clear keys: an insecure target).
    A subscriber's SQN is kept or raised, never lowered (simcore.export.hlr_sqn): where it must
    be raised, a GSUP connection to `host:gsup_port` is opened for the resync."""
    form = key_form(hsm, target, "clear")
    report = ExportReport(target, f"osmo-hlr {host}:{port}", form)
    started = time.monotonic()
    gsup: list[GsupClient] = []

    def open_gsup() -> GsupClient:
        if not gsup:
            assert gsup_port is not None
            gsup.append(GsupClient(host, gsup_port, name="simsmith-export"))
        return gsup[0]

    try:
        with CtrlClient(host, port) as ctrl:
            for sims in select_sims(engine, batch=selection.batch, iccids=selection.iccids,
                                    state=selection.state, page=page):
                subs = export_keys(hsm, sims, form,
                                   next_network_sqns(engine, [s.iccid for s in sims]))
                results = provision(ctrl, subs, gsup=open_gsup if gsup_port else None)
                report.results += results
                for r in results:
                    setattr(report, r.status, getattr(report, r.status) + 1)
                report.count += len(results)
                if progress:
                    progress(report.count)
    finally:
        for g in gsup:
            g.close()
        report.seconds = time.monotonic() - started
        if report.count:
            _audit(engine, report, "export.osmo_hlr", actor)
    log.info("export.osmo_hlr", target=target, count=report.count, failed=report.failed)
    return report


def export_file(engine: Engine, hsm: Hsm, *, fmt: str, target: str, out: Path,
                scheme: str | None = None, selection: Selection = Selection(),
                plmn: str | None = None, actor: str = "cli",
                progress: Progress | None = None) -> ExportReport:
    """Write the selected SIMs to `out` in `fmt` (simcore.export.writers)."""
    form = key_form(hsm, target, scheme)
    report = ExportReport(target, f"{fmt} {Path(out).name}", form)
    started = time.monotonic()
    writer = FileWriter(Path(out), fmt, form, plmn=plmn)
    try:
        for sims in select_sims(engine, batch=selection.batch, iccids=selection.iccids,
                                state=selection.state):
            writer.add(export_keys(hsm, sims, form,
                                   next_network_sqns(engine, [s.iccid for s in sims])))
            report.count = report.created = writer.count
            if progress:
                progress(report.count)
    except BaseException:
        writer.abort()
        raise
    if report.count == 0:
        writer.abort()
        raise InvalidInput("selection", "no SIM with keys matches", expected="a batch, ICCIDs "
                           "or a state that selects SIMs with Ki and OPc")
    writer.close()
    report.seconds = time.monotonic() - started
    _audit(engine, report, "export.file", actor)
    return report
