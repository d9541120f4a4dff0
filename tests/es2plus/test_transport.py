"""The embedded default's ES2+ transport (issue 12 item 7): the client keeps its TLS
connections alive in a pool as large as the callers (a handshake per connection, not per call),
and the operator side does not check and mirror profile states around each call when the SM-DP+
is simsmith's own endpoint on the same store. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from api import es2plus_listener
from esim.es2plus import Es2PlusFunctionFailed
from simcore import esim_orders
from simcore.smdp.es2plus import Es2PlusEndpoint
from tests.es2plus.conftest import SMDP_ADDRESS, Pki, Server, add_profiles, make_client, profile

pytestmark = pytest.mark.storage


@pytest.mark.slow
def test_keep_alive_pool_holds_every_concurrent_connection(
        engine: Engine, https_server: Server, pki: Pki, endpoint: Es2PlusEndpoint,
        monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[int] = []
    protocol = es2plus_listener.MtlsHttpToolsProtocol
    original = protocol.connection_made

    def counting(self: Any, transport: Any) -> None:
        made.append(1)
        original(self, transport)

    monkeypatch.setattr(protocol, "connection_made", counting)
    slow_handle = endpoint.handle

    def slow(*args: Any, **kw: Any) -> Any:
        time.sleep(0.2)  # every call overlaps the others: 24 connections at once
        return slow_handle(*args, **kw)

    https_server.app.state.es2plus = type("Slow", (), {"handle": staticmethod(slow)})()
    callers = 24
    with make_client(https_server, pki) as client, ThreadPoolExecutor(callers) as pool:
        def call(_: int) -> str:
            try:
                client.release_profile(iccid="8988280000000999994")
            except Es2PlusFunctionFailed as e:
                return e.code.subject if e.code else "?"
            return "executed"

        for _round in range(3):
            assert set(pool.map(call, range(callers))) == {"8.2.1"}
    # Rounds two and three reuse the first round's connections (httpx's default pool kept 20).
    assert callers // 2 <= len(made) <= callers


def test_embedded_port_does_not_recheck_or_mirror(engine: Engine, tmp_path: Path) -> None:
    from api.es2plus_listener import start_embedded_es2plus

    first, second = add_profiles(engine, 2)
    embedded = start_embedded_es2plus(engine, SMDP_ADDRESS, tmp_path / "pki")
    mine: list[str] = []
    caller = threading.get_ident()

    def record(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if threading.get_ident() == caller:
            mine.append(statement)

    try:
        esim_orders.order(engine, embedded.smdp, "warm-up", actor="t")
        event.listen(engine, "before_cursor_execute", record)
        try:
            embedded.smdp.download_order(iccid=second)
            result = embedded.smdp.confirm_order(iccid=second, matching_id="M-1")
        finally:
            event.remove(engine, "before_cursor_execute", record)
    finally:
        embedded.close()
    # The endpoint checked and moved the profile in its own transactions (other threads); the
    # caller's side read and wrote nothing around the two calls.
    assert mine == []
    assert profile(engine, second).profile_state == "released"
    assert result.matching_id == "M-1" and first != second
