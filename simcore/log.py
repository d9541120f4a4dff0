"""Structured logging (structlog): console lines for people, JSON lines for machines.

Configured once by the entry point (CLI or API) from Settings; library code just calls
`get_logger(__name__)` and logs events with key-value fields, never secrets.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def configure(level: str = "INFO", json: bool = False) -> None:
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    processors.append(structlog.processors.JSONRenderer() if json
                      else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)),
        # stderr: a command's stdout stays clean for --json and pipes.
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


# Library default until an entry point configures logging: warnings and errors only, on stderr.
if not structlog.is_configured():
    configure("WARNING")
