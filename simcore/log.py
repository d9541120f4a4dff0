"""Structured logging (structlog): console lines for people, JSON lines for machines.

Configured once by the entry point (CLI or API) from Settings; library code just calls
`get_logger(__name__)` and logs events with key-value fields, never secrets. Every line written
inside an OpenTelemetry span carries its `trace_id` and `span_id` (W3C Trace Context hex), so a
log line leads to its trace (docs/observability.md).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from opentelemetry import trace


class _CurrentStderr:
    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def add_trace_ids(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: the current span's trace and span ids, when there is one."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event.setdefault("trace_id", format(ctx.trace_id, "032x"))
        event.setdefault("span_id", format(ctx.span_id, "016x"))
    return event


def configure(level: str = "INFO", json: bool = False) -> None:
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    processors.append(structlog.processors.JSONRenderer() if json
                      else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)),
        # stderr: a command's stdout stays clean for --json and pipes. Looked up at each write,
        # so a background thread (webhooks, the NATS relay) never writes to a stream that was
        # replaced and closed since logging was configured (a test's captured stderr).
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


# Library default until an entry point configures logging: warnings and errors only, on stderr.
if not structlog.is_configured():
    configure("WARNING")
