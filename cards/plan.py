"""An APDU plan: the ordered steps of a personalisation, printable for `--dry-run` with every
secret masked, and executable on a Transport with per-group APDU/exchange/time accounting.

A step either has a fixed APDU or builds it at run time (`build`, for key material and the ADM
code), with `preview` standing in for it in a dry run. After the card answers, a step checks
the status word (naming the code it needs), an expected read-back, or runs its own `check`.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cards.apdu import Apdu
from cards.errors import CardRemovedError, VerificationError
from cards.status_words import check as check_sw
from cards.transport import Transport

Check = Callable[[bytes, int], None]


@dataclass(frozen=True)
class Step:
    group: str
    label: str
    apdu: Apdu | None = None
    build: Callable[[], Apdu] | None = None
    preview: Apdu | None = None
    expect: bytes | None = None
    check: Check | None = None
    needs: str = "ADM"

    def shown(self) -> Apdu:
        apdu = self.apdu or self.preview
        assert apdu is not None, f"step {self.label} has neither apdu nor preview"
        return apdu


@dataclass
class GroupStats:
    apdus: int = 0
    exchanges: int = 0
    seconds: float = 0.0


@dataclass
class PlanReport:
    apdus: int = 0
    exchanges: int = 0
    seconds: float = 0.0
    groups: dict[str, GroupStats] = field(default_factory=dict)

    def add(self, group: str, apdus: int, exchanges: int, seconds: float) -> None:
        g = self.groups.setdefault(group, GroupStats())
        g.apdus += apdus
        g.exchanges += exchanges
        g.seconds += seconds
        self.apdus += apdus
        self.exchanges += exchanges
        self.seconds += seconds


def describe(steps: list[Step], max_data: int | None = 12) -> list[str]:
    """One line per step: group, label, APDU in hex with secrets masked (long data cut)."""
    width = max((len(s.group) for s in steps), default=0)
    return [f"{i:3d}  {s.group:<{width}}  {s.label:<48}  {s.shown().masked_hex(max_data)}"
            for i, s in enumerate(steps, 1)]


def execute(transport: Transport, steps: list[Step], report: PlanReport | None = None
            ) -> PlanReport:
    """Run every step in order; the first failure raises (nothing is retried)."""
    report = report if report is not None else PlanReport()
    for i, step in enumerate(steps, 1):
        apdu = step.build() if step.build is not None else step.apdu
        assert apdu is not None
        before = transport.stats.exchanges
        start = time.perf_counter()
        try:
            data, sw = transport.send(apdu)
        except CardRemovedError as exc:
            raise CardRemovedError(
                f"step {i}/{len(steps)} ({step.group}: {step.label}): {exc}. The card may be "
                "partly written; personalisation rewrites every file, so running it again "
                "completes the card") from exc
        report.add(step.group, 1, transport.stats.exchanges - before,
                   time.perf_counter() - start)
        if step.check is not None:
            step.check(data, sw)
            continue
        check_sw(sw, step.label, step.needs)
        if step.expect is not None and not hmac.compare_digest(data, step.expect):
            raise VerificationError(f"read-back of {step.label} differs: wrote "
                                    f"{step.expect.hex().upper()}, card holds "
                                    f"{data.hex().upper()}")
    return report
