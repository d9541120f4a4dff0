"""The HLR port over osmo-hlr's CTRL interface (OsmoHLR user manual, "Control interface":
subscriber.create, subscriber.delete, subscriber.by-imsi-<IMSI>.msisdn / .cs-enabled /
.ps-enabled), with authentication data through simcore.export.osmo_hlr.provision (which keeps
the network's SQN, never lowers it).

osmo-hlr keeps K/OPc in clear: the keys leave the HSM only for an export target marked insecure
(`simsmith hsm kek add NAME --purpose export --insecure-clear`), each export audited by the HSM.
One CTRL connection per thread, opened again after any failure.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any, TypeVar

from hsm_sim.hsm import Hsm
from simcore.export.ipa import IpaClosed
from simcore.export.keys import KeyForm, key_form
from simcore.export.osmo_ctrl import CtrlClient, Reply
from simcore.export.osmo_hlr import provision
from simcore.ports.hlr import HlrRefused, HlrSubscriber, HlrUnavailable

T = TypeVar("T")

_NO_SUCH = ("Subscriber doesn't exist.", "No such subscriber.")


class OsmoHlr:
    """HlrPort for osmo-hlr. `target` names the HSM's (insecure, clear) export KEK for it."""

    def __init__(self, hsm: Hsm, target: str, host: str, port: int = 4259, *,
                 timeout: float = 5.0) -> None:
        self.hsm = hsm
        self.host, self.port, self.timeout = host, port, timeout
        self.form: KeyForm = key_form(hsm, target, "clear")
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"OsmoHlr({self.host}:{self.port}, target={self.form.target})"

    def _client(self) -> CtrlClient:
        c: CtrlClient | None = getattr(self._local, "client", None)
        if c is None:
            c = CtrlClient(self.host, self.port, self.timeout)
            self._local.client = c
        return c

    def _drop(self) -> None:
        c = getattr(self._local, "client", None)
        self._local.client = None
        if c is not None:
            with contextlib.suppress(OSError):
                c.close()

    def _talk(self, fn: Callable[[CtrlClient], T]) -> T:
        try:
            client = self._client()
        except OSError as e:  # no connection: the request never left
            raise HlrUnavailable(f"osmo-hlr {self.host}:{self.port}: {e or type(e).__name__}",
                                 maybe_executed=False) from e
        try:
            return fn(client)
        except (TimeoutError, OSError, IpaClosed, EOFError) as e:
            self._drop()
            raise HlrUnavailable(f"osmo-hlr {self.host}:{self.port}: {e or type(e).__name__}"
                                 ) from e

    def _pipeline(self, cmds: Sequence[tuple[str, str, str | None]]) -> list[Reply]:
        return self._talk(lambda c: c.pipeline(cmds))

    def provision(self, sub: HlrSubscriber) -> None:
        from simcore.export.keys import export_keys  # the HSM re-wraps K/OPc for the target

        sim: Any = SimpleNamespace(iccid=sub.iccid, imsi=sub.imsi, msisdn=sub.msisdn,
                                   ki_ref=sub.ki_ref, opc_ref=sub.opc_ref)
        exported = export_keys(self.hsm, [sim], self.form)
        result = self._talk(lambda c: provision(c, exported, cs=sub.allowed,
                                                ps=sub.allowed))[0]
        if result.status == "failed":
            raise HlrRefused(f"osmo-hlr: subscriber {sub.imsi}: {result.error}")
        if result.status == "created" or sub.msisdn is not None:
            return
        # An update that should carry no MSISDN: make sure an old one is gone.
        self.set_msisdn(sub.imsi, None)

    def set_msisdn(self, imsi: str, msisdn: str | None) -> None:
        self._expect(self._pipeline([("SET", f"subscriber.by-imsi-{imsi}.msisdn",
                                      msisdn or "none")]), imsi)

    def set_access(self, imsi: str, *, allowed: bool) -> None:
        v = "1" if allowed else "0"
        self._expect(self._pipeline([("SET", f"subscriber.by-imsi-{imsi}.cs-enabled", v),
                                     ("SET", f"subscriber.by-imsi-{imsi}.ps-enabled", v)]), imsi)

    def remove(self, imsi: str) -> None:
        r = self._pipeline([("SET", "subscriber.delete", imsi)])[0]
        if not r.ok and r.value not in _NO_SUCH:
            raise HlrRefused(f"osmo-hlr: delete {imsi}: {r.value}")

    def exists(self, imsi: str) -> bool:
        r = self._pipeline([("GET", f"subscriber.by-imsi-{imsi}.info", None)])[0]
        if not r.ok and r.value not in _NO_SUCH:
            raise HlrRefused(f"osmo-hlr: info {imsi}: {r.value}")
        return r.ok

    def close(self) -> None:
        self._drop()

    @staticmethod
    def _expect(replies: list[Reply], imsi: str) -> None:
        for r in replies:
            if not r.ok:
                raise HlrRefused(f"osmo-hlr: subscriber {imsi}: {r.value}")
