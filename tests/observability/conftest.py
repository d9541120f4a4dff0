"""Tracing on, into an in-memory exporter, for one test at a time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from simcore import telemetry


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    telemetry.shutdown()
    exporter = InMemorySpanExporter()
    assert telemetry.configure_tracing("simsmith-test", exporter=exporter)
    yield exporter
    telemetry.shutdown()
