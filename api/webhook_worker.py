"""The webhook deliverer: a thread in each API process that fans outbox events out to
subscriptions and sends due deliveries, signed (simcore.webhooks). Several processes may run it at
once: fan-out and claims lock rows (SKIP LOCKED on PostgreSQL; SQLite serialises writers). Also
purges idempotency records older than a day and published outbox events past their retention
(SIMSMITH_OUTBOX_RETENTION_DAYS), every ten minutes.
"""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
from opentelemetry.trace import SpanKind
from sqlalchemy import Engine

from api.background import PollingThread
from api.settings import ApiSettings
from simcore import events, idempotency, telemetry, webhooks
from simcore.log import get_logger

log = get_logger("api.webhooks")


class WebhookWorker(PollingThread):
    name = "webhook-deliverer"
    fan_out_batch = 500  # outbox events turned into deliveries per round
    send_batch = 50  # deliveries leased and sent per round

    def __init__(self, engine: Engine, settings: ApiSettings) -> None:
        super().__init__(settings.webhook_poll_seconds)
        self.engine = engine
        self.settings = settings
        self._client = httpx.Client(timeout=settings.webhook_timeout_seconds,
                                    follow_redirects=False)
        self._last_purge = 0.0

    def close(self) -> None:
        self._client.close()

    def run_once(self) -> bool:
        """One round: fan out, send what is due. True if a batch was full (go straight on)."""
        now = time.monotonic()
        if now - self._last_purge > 600:
            self._last_purge = now
            idempotency.purge(self.engine, timedelta(hours=24))
            retention = timedelta(days=self.settings.outbox_retention_days)
            events.prune(self.engine, older_than=retention)
        fanned = webhooks.fan_out(self.engine, limit=self.fan_out_batch)
        jobs = webhooks.claim_due(self.engine, limit=self.send_batch,
                                  lease=self.settings.webhook_timeout_seconds * 4)
        for job in jobs:
            self.send(job)
        # Straight on only with a full batch behind (more may be waiting), else the poll's wait.
        # Under a steady stream of events — every ES9+ download writes two — a round per
        # trickle of one or two events cost ~0.3-0.5 ms of CPU per download (five statements
        # and a transaction each round, in each worker process).
        return fanned >= self.fan_out_batch or len(jobs) >= self.send_batch

    def send(self, job: webhooks.DeliveryJob) -> str:
        """Send one delivery and record the outcome. Whatever goes wrong with this delivery (a
        refused connection, a URL httpx cannot use, a bug) is recorded against it, which backs
        off and dead-letters after its attempts: one bad endpoint cannot stop the others."""
        status: int | None = None
        parent = {"traceparent": job.traceparent} if job.traceparent else None
        with telemetry.continue_trace(parent), \
                telemetry.span("webhook.deliver", kind=SpanKind.PRODUCER, delivery=job.id,
                               event_id=job.event_id, attempt=job.attempts + 1) as sp:
            try:
                body = job.body.encode()
                headers = {
                    "Content-Type": "application/json",
                    webhooks.SIGNATURE_HEADER: webhooks.signature_header(job.secret, body),
                    webhooks.EVENT_ID_HEADER: str(job.event_id),
                    webhooks.DELIVERY_ID_HEADER: str(job.id),
                    "User-Agent": "simsmith-webhooks/1",
                }
                # The receiver continues the event's trace: under this delivery's span when
                # tracing is on here, else from the change that wrote the event.
                if job.traceparent:
                    headers["traceparent"] = job.traceparent
                telemetry.inject_headers(headers)
                r = self._client.post(job.url, content=body, headers=headers)
                status = r.status_code
                ok = 200 <= status < 300
                error = None if ok else f"HTTP {status}"
            except Exception as e:  # recorded against this delivery, never the round's end
                ok, error = False, webhooks.describe_failure(e)
            if sp is not None:
                sp.set_attribute("http.response.status_code", status or 0)
        s = self.settings
        state = webhooks.record_result(self.engine, job, ok=ok, status=status, error=error,
                                       max_attempts=s.webhook_max_attempts,
                                       base=s.webhook_backoff_seconds,
                                       cap=s.webhook_backoff_max_seconds)
        telemetry.WEBHOOK_DELIVERIES.labels("retry" if state == "pending" else state).inc()
        log.info("webhook delivery", delivery=job.id, event_id=job.event_id, status=status,
                 state=state, attempt=job.attempts + 1, error=error)
        return state
