"""Round trips to PostgreSQL per ES9+ step of a complete download (issue 16 item 8; docs/sgp22.md
"Sessions"): InitiateAuthentication 1 (the session), AuthenticateClient 2 (the session with the
order of the eUICC's matching ID; the session's step), GetBoundProfilePackage 2 (the session with
its order and what the UPP needs of the SIM; the report), HandleNotification 2 (the session; the
report) — counted at the driver, on the core `build_core` wires, after a warm-up download (the
first one also reads the MNC lengths and the SUCI keys, kept for a minute)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from esim.lpa.download import Es9Refused, download
from esim.sgp22 import es9plus as wire
from hsm_sim.soft import SoftHsm
from simcore import db
from simcore.smdp.es9plus import Es9PlusCore
from simcore.smdp.upp_source import HsmUppSource, UppRecord
from tests.conftest import reset_pg
from tests.smdp.es9_http import lpa, running_smdp, status_code
from tests.wiring.conftest import hsm  # noqa: F401  (fixture)

pytestmark = pytest.mark.storage


class CountingEs9:
    """The LPA's ES9+ transport straight onto the core, counting the statements each function
    sends to the database: kept-connection statements and any through the engine's pool."""

    def __init__(self, core: Es9PlusCore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.core = core
        self.current: str | None = None
        self.statements: Counter[str] = Counter()
        run = db.KeptConnections.run

        def counted(kept: db.KeptConnections, *args: Any, **kwargs: Any) -> Any:
            self._count()
            return run(kept, *args, **kwargs)

        monkeypatch.setattr(db.KeptConnections, "run", counted)

    def _count(self, *_: Any) -> None:
        if self.current is not None:
            self.statements[self.current] += 1

    def post(self, function: str, body: dict[str, Any]) -> dict[str, Any] | None:
        self.current = function
        try:
            return self.core.handle(function, body).body
        finally:
            self.current = None


def _download(smdp: Any, card: Any, es9: CountingEs9) -> None:
    profile = smdp.order()
    with lpa(card) as functions:
        assert download(functions, es9, profile.activation_code.to_uri()).success
    assert smdp.state(profile.iccid) == "installed"


def test_a_download_is_seven_round_trips_on_postgresql(
        pg_engine: Engine, hsm: SoftHsm, tmp_path: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    reset_pg(pg_engine)
    records: list[Any] = []
    package = HsmUppSource.package

    def seen(source: HsmUppSource, iccid: str, record: UppRecord | None = None) -> bytes:
        records.append(record)
        return package(source, iccid, record)

    monkeypatch.setattr(HsmUppSource, "package", seen)
    with running_smdp(pg_engine, hsm, tmp_path / "home", count=2) as smdp:
        es9 = CountingEs9(smdp.listener.core, monkeypatch)
        _download(smdp, smdp.euicc(tmp_path, "one"), es9)  # warm-up
        es9.statements.clear()
        event.listen(pg_engine, "before_cursor_execute", es9._count)
        try:
            _download(smdp, smdp.euicc(tmp_path, "two"), es9)
        finally:
            event.remove(pg_engine, "before_cursor_execute", es9._count)
    assert dict(es9.statements) == {"initiateAuthentication": 1, "authenticateClient": 2,
                                    "getBoundProfilePackage": 2, "handleNotification": 2}
    # the UPP was made from the SIM's record read with the order, both times
    assert len(records) == 2 and all(isinstance(r, UppRecord) for r in records)
    assert records[0].ki_ref and records[0].ki_ref not in repr(records[0])


class Tampering:
    """The LPA's transport onto the core, AuthenticateClient's request changed by `change`."""

    def __init__(self, core: Es9PlusCore, change: Any) -> None:
        self.core, self.change, self.answers = core, change, []  # type: ignore[var-annotated]

    def post(self, function: str, body: dict[str, Any]) -> dict[str, Any] | None:
        if function == "authenticateClient":
            body = self.change(dict(body))
        answer = self.core.handle(function, body).body
        self.answers.append((function, answer))
        return answer


@pytest.mark.parametrize(("change", "code"), [
    # not DER: refused as malformed once the session is found (as before the one read)...
    (lambda b: {**b, "authenticateServerResponse": wire.b64(b"\x30\x03\x01")}, ("1.6", "2.1")),
    # ...and as an unknown transaction first when there is no such session
    (lambda b: {**b, "transactionId": "00" * 16,
                "authenticateServerResponse": wire.b64(b"\x30\x03\x01")}, ("8.10.1", "3.9")),
    (lambda b: {**b, "transactionId": "00" * 16}, ("8.10.1", "3.9")),
])
def test_authenticate_client_refusals_keep_their_order(
        engine: Engine, hsm: SoftHsm, tmp_path: Path, change: Any,  # noqa: F811
        code: tuple[str, str]) -> None:
    with running_smdp(engine, hsm, tmp_path / "home", count=1) as smdp:
        profile = smdp.order()
        es9 = Tampering(smdp.listener.core, change)
        with lpa(smdp.euicc(tmp_path)) as functions, pytest.raises(Es9Refused):
            download(functions, es9, profile.activation_code.to_uri())
        function, answer = es9.answers[-1]
        assert function == "authenticateClient" and status_code(answer) == code
        assert smdp.state(profile.iccid) == "released"
