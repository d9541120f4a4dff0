"""Running workflows in a process: the settings (SIMSMITH_HLR_*, SIMSMITH_WORKFLOW_*), the
peers built from them, and a worker pool of threads (`simsmith worker`, and the one inside
`simsmith serve`).

The HLR is chosen by simcore.config.hlr_choice (SIMSMITH_HLR): osmo-hlr over CTRL when
SIMSMITH_HLR_HOST is set (keys exported in clear to the HSM's insecure export target
SIMSMITH_HLR_TARGET), else the embedded HLR — a subscriber register in simsmith's own store
(simcore.ports.embedded_hlr), so a fresh workspace activates end to end with nothing else
running. Production mode uses the embedded one only with SIMSMITH_HLR_ALLOW_EMBEDDED; without
an HLR named it has none (NoHlr: the HLR steps fail, saying why, and are compensated).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Engine

from hsm_sim.hsm import Hsm
from simcore.log import get_logger
from simcore.ports.hlr import HlrPort, HlrRefused, HlrSubscriber
from simcore.smdp.port import SmdpPort
from simcore.workflows import activation, service_flows
from simcore.workflows.engine import RetryPolicy, Worker
from simcore.workflows.steps import Deps
from simcore.workflows.wakeup import Doorbell, Listener

# The definitions a worker runs, registered on import (engine.REGISTRY).
DEFINITIONS = (activation.ACTIVATION, service_flows.SUSPEND, service_flows.RESUME,
               service_flows.SWAP, service_flows.TERMINATION)

log = get_logger(__name__)


class WorkflowSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIMSMITH_", extra="ignore")

    hlr_host: str | None = Field(default=None, description="osmo-hlr's CTRL address; unset: "
                                 "the embedded HLR (simcore.config.hlr_choice)")
    hlr_ctrl_port: int = Field(default=4259, ge=1, le=65535)
    hlr_target: str = Field(default="hlr", description="The HSM export target (insecure, "
                            "clear) whose form osmo-hlr receives K/OPc in")
    workflow_worker: bool = Field(default=True, description="Run workflow workers inside "
                                  "`simsmith serve`")
    workflow_threads: int = Field(default=2, ge=1, le=64)
    workflow_lease_seconds: float = Field(default=30.0, gt=0)
    workflow_batch: int = Field(default=4, ge=1, le=100)
    workflow_poll_seconds: float = Field(default=0.2, gt=0)
    workflow_listen_poll_seconds: float = Field(
        default=1.0, gt=0, description="On PostgreSQL, how often idle workers look for due "
        "runs while LISTEN/NOTIFY wakes them (simcore.workflows.wakeup): what a lost "
        "notification, a retry's backoff or an expired lease may wait")
    workflow_retry_initial_seconds: float = Field(default=1.0, ge=0)
    workflow_retry_max_seconds: float = Field(default=300.0, ge=0)
    workflow_max_attempts: int = Field(default=6, ge=1)
    quarantine_days: int = Field(default=90, ge=0)

    def policy(self) -> RetryPolicy:
        return RetryPolicy(initial=self.workflow_retry_initial_seconds,
                           maximum=self.workflow_retry_max_seconds,
                           max_attempts=self.workflow_max_attempts)


class NoHlr:
    """The HLR port when none may be used (production mode, no HLR named): every call is
    refused for good, saying why, so the runs are compensated; nothing was ever put there, so
    a removal succeeds."""

    def _no(self) -> None:
        from simcore.config import NO_HLR_IN_PRODUCTION

        e = HlrRefused(NO_HLR_IN_PRODUCTION)
        e.maybe_executed = False
        raise e

    def provision(self, sub: HlrSubscriber) -> None:
        self._no()

    def set_msisdn(self, imsi: str, msisdn: str | None) -> None:
        self._no()

    def set_access(self, imsi: str, *, allowed: bool) -> None:
        self._no()

    def remove(self, imsi: str) -> None:
        """Nothing was ever put there: nothing to remove."""


class LazyHlr:
    """Builds the real port on first use (the HSM may open only then); the build is retried
    on each call until it works."""

    def __init__(self, build: Callable[[], HlrPort]) -> None:
        self._build = build
        self._port: HlrPort | None = None
        self._lock = threading.Lock()

    def _get(self) -> HlrPort:
        with self._lock:
            if self._port is None:
                self._port = self._build()
            return self._port

    def provision(self, sub: HlrSubscriber) -> None:
        self._get().provision(sub)

    def set_msisdn(self, imsi: str, msisdn: str | None) -> None:
        self._get().set_msisdn(imsi, msisdn)

    def set_access(self, imsi: str, *, allowed: bool) -> None:
        self._get().set_access(imsi, allowed=allowed)

    def remove(self, imsi: str) -> None:
        self._get().remove(imsi)

    def close(self) -> None:
        port = self._port
        if port is not None and hasattr(port, "close"):
            port.close()


def build_deps(engine: Engine, settings: WorkflowSettings, *, smdp: SmdpPort | None,
               hsm: Hsm | Callable[[], Hsm] | None) -> Deps:
    """The peers of the configuration: the HLR (osmo-hlr, the embedded one, or none in
    production mode without one named: simcore.config.hlr_choice), the SM-DP+, the HSM.
    ValueError for an HLR setting that cannot be used (SIMSMITH_HLR=embedded in production
    without the allowance; osmo-hlr without its address)."""
    from simcore.config import get_settings, hlr_choice
    from simcore.ports.embedded_hlr import EmbeddedHlr

    choice = hlr_choice(get_settings())
    deps = Deps(engine, EmbeddedHlr(engine) if choice == "embedded" else NoHlr(), smdp, hsm,
                settings.quarantine_days)
    if choice == "osmo-hlr":
        if not settings.hlr_host:
            raise ValueError("SIMSMITH_HLR=osmo-hlr needs SIMSMITH_HLR_HOST")
        from simcore.ports.osmo_hlr import OsmoHlr

        host, port, target = settings.hlr_host, settings.hlr_ctrl_port, settings.hlr_target

        def build() -> HlrPort:
            h = deps.get_hsm()
            if h is None:
                raise HlrRefused("osmo-hlr needs the HSM to export keys, and none is configured")
            return OsmoHlr(h, target, host, port)

        deps.hlr = LazyHlr(build)
    return deps


class WorkerPool:
    """`threads` workers, each claiming and advancing due runs until stopped."""

    def __init__(self, engine: Engine, deps: Deps, settings: WorkflowSettings, *,
                 threads: int | None = None, name: str = "workflow") -> None:
        self._stop = threading.Event()
        self.workers = [Worker(engine, deps, lease=settings.workflow_lease_seconds,
                               batch=settings.workflow_batch, policy=settings.policy())
                        for _ in range(threads or settings.workflow_threads)]
        self._poll = settings.workflow_poll_seconds
        self._listen_poll = max(self._poll, settings.workflow_listen_poll_seconds)
        # PostgreSQL: idle workers wait for a NOTIFY (simcore.workflows.wakeup), polling
        # seldom; SQLite: they poll.
        self.doorbell = Doorbell(len(self.workers))
        self.listener = (Listener(engine, self.doorbell, self._stop, name=f"{name}-listener")
                         if engine.dialect.name == "postgresql" else None)
        sleep = self._stop.wait if self.listener is None else self._idle
        self._threads = [threading.Thread(target=w.run_until, args=(self._stop.is_set,),
                                          kwargs={"idle": self._poll, "sleep": sleep},
                                          name=f"{name}-{i}", daemon=True)
                         for i, w in enumerate(self.workers)]

    def _idle(self, _poll: float) -> None:
        listener = self.listener
        self.doorbell.wait(self._listen_poll if listener is not None and listener.up
                           else self._poll)

    def start(self) -> WorkerPool:
        if self.listener is not None:
            self.listener.start()
        for t in self._threads:
            t.start()
        log.info("workflow.workers.started", threads=len(self._threads),
                 listen=self.listener is not None)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.doorbell.ring_all()
        for t in self._threads:
            if t.is_alive():
                t.join(timeout=timeout)
        if self.listener is not None:
            self.listener.join(timeout)

    def wait(self) -> None:
        """Block until stopped (a signal handler calls stop)."""
        while not self._stop.wait(0.5):
            pass
