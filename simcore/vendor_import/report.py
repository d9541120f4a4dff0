"""What validation found: one `Issue` per broken rule, at file:line:column, never a secret.

An issue prints as one line, e.g.

    cards.out:14:22: ICCID '8949000000000000013': check digit 3 where 1 was expected [iccid.luhn]
    cards.out:15:41: KI <30 hex digits>: 15 bytes, expected 16 [hex.length]

Secret values (keys, PINs, PUKs, ADM codes) are replaced by their shape (`<30 hex digits>`).
Other values are shown up to SHOWN characters (then cut, with their length): a 50 MB field makes
a one-line issue, not a 50 MB message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simcore.errors import InvalidInput

MAX_KEPT = 200  # issues kept for the report; the count goes on
SHOWN = 40  # characters of a value an issue may show
MAX_MESSAGE = 300  # characters of an issue's message


@dataclass(frozen=True, slots=True)
class Issue:
    path: str
    line: int  # 1-based; 0 for the file as a whole
    column: int  # 1-based character column; 0 when the whole line
    field: str
    rule: str
    message: str
    shown: str | None = None  # the value as it may be shown (masked when secret)

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}" if self.line else self.path
        what = self.field + (f" {self.shown}" if self.shown is not None else "")
        return f"{where}: {what}: {self.message} [{self.rule}]"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.path, "line": self.line, "column": self.column, "field": self.field,
                "rule": self.rule, "message": self.message, "value": self.shown}


def clip(value: str, limit: int = SHOWN) -> str:
    """`repr(value)`, cut after `limit` characters (then followed by its length)."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value):,} characters)"


def mask(value: str, secret: bool) -> str:
    """How a value may appear in a message: quoted (and clipped), or only its shape when
    secret."""
    if not secret:
        return clip(value)
    hexish = len(value) <= 4096 and all(c in "0123456789abcdefABCDEF" for c in value)
    return f"<{len(value):,} {'hex digits' if hexish else 'characters'}>"


@dataclass
class Report:
    """Issues of one file (the first MAX_KEPT), how many in all, how many rows were bad."""

    path: str
    issues: list[Issue] = field(default_factory=list)
    total: int = 0
    bad_rows: int = 0

    def add(self, issue: Issue) -> None:
        self.total += 1
        if len(self.issues) < MAX_KEPT:
            if len(issue.message) > MAX_MESSAGE or len(issue.shown or "") > 3 * SHOWN:
                issue = Issue(issue.path, issue.line, issue.column, issue.field, issue.rule,
                              issue.message[:MAX_MESSAGE],
                              None if issue.shown is None else issue.shown[: 3 * SHOWN])
            self.issues.append(issue)

    def merge(self, other: Report) -> None:
        self.total += other.total
        self.bad_rows += other.bad_rows
        self.issues.extend(other.issues[: max(0, MAX_KEPT - len(self.issues))])

    @property
    def ok(self) -> bool:
        return self.total == 0


class InvalidFile(InvalidInput):
    """A vendor file broke one or more rules; nothing was imported. `report` has them all."""

    def __init__(self, report: Report) -> None:
        self.report = report
        first = report.issues[0] if report.issues else None
        more = f" (and {report.total - 1} more issues)" if report.total > 1 else ""
        super().__init__(report.path, f"{first}{more}" if first else "invalid")
        # One line naming file:line:column, the rule and the (masked) value.
        self.args = (f"{first}{more}",)

    def __str__(self) -> str:
        return str(self.args[0])
