"""simsmith's LPA and virtual eUICC against simsmith's own SM-DP+ ES9+ core
(simcore.smdp.es9plus), in process with a clock the test moves: a download installs and the
core reports it; an expired transaction (the RSP session outlived its time to live between two
ES9+ calls) and an expired download order are refused with their SGP.22 codes, the eUICC's
session is cancelled too, and nothing is installed (issue 17 item 4, tamper tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from esim.euicc.card import VirtualEuicc
from esim.euicc.identity import dev_euicc
from esim.lpa.download import Es9Refused, download
from esim.lpa.es10 import Es10Error
from esim.lpa.functions import Es10Functions
from esim.rsp_pki import DEFAULT_SMDP_OID, DevRspPki
from esim.sgp22 import schema
from esim.sgp22 import signatures as sig
from esim.sgp22.certificates import TrustedCis
from simcore.euicc import EuiccLoopback, es10_session, virtual_euicc
from simcore.smdp.es9plus import (
    DEFAULT_SESSION_TTL,
    Es9PlusCore,
    InMemorySessions,
    ReleasedOrder,
    SmdpIdentity,
)
from tests.euicc.smdp_side import milenage_upp, store_metadata
from tests.smdp.test_es9plus_core import Orders

ICCID, IMSI = "8949440000000000041", "001010000000041"
ADDRESS = "smdp.simsmith.test"


class Clock:
    """Starts when the dev PKI's certificates have been issued (they are valid from then)."""

    def __init__(self) -> None:
        self.start = self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


class CoreEs9:
    """The core behind the LPA's Es9Transport; `before` runs ahead of a named function (the
    test's hook to move the clock between two ES9+ calls)."""

    def __init__(self, core: Es9PlusCore) -> None:
        self.core = core
        self.calls: list[str] = []
        self.transaction_id = b""
        self.before: dict[str, Any] = {}

    def post(self, function: str, body: dict[str, Any]) -> dict[str, Any] | None:
        self.calls.append(function)
        if function in self.before:
            self.before[function]()
        answer = self.core.handle(function, body)
        if answer.body and "transactionId" in answer.body:
            self.transaction_id = bytes.fromhex(answer.body["transactionId"])
        return answer.body


def _setup(tmp_path: Path, order_ttl: timedelta | None = None,
           ) -> tuple[CoreEs9, Orders, Clock, VirtualEuicc]:
    pki = DevRspPki(tmp_path / "rsp")
    card = virtual_euicc(dev_euicc(tmp_path / "rsp", state=tmp_path / "euicc.json"))
    identity = SmdpIdentity(
        address=ADDRESS, oid=DEFAULT_SMDP_OID,
        dpauth_certificate=pki.dpauth().cert, dpauth_signer=sig.software_signer(pki.dpauth().key),
        dppb_certificate=pki.dppb().cert, dppb_signer=sig.software_signer(pki.dppb().key),
        cis=TrustedCis([pki.ci().cert]))
    clock = Clock()
    released = ReleasedOrder(matching_id="MATCH-41", iccid=ICCID,
                             profile_metadata=store_metadata(ICCID),
                             expires_at=clock.now + order_ttl if order_ttl else None)
    orders = Orders({released.matching_id: released})
    upp = milenage_upp(ICCID, IMSI)
    core = Es9PlusCore(identity, InMemorySessions(), orders, lambda _order: upp, now=clock)
    return CoreEs9(core), orders, clock, card


AC = f"LPA:1${ADDRESS}$MATCH-41"


def test_download_through_simsmiths_smdp_core(tmp_path: Path) -> None:
    es9, orders, _clock, card = _setup(tmp_path)
    with es10_session(EuiccLoopback(card)) as es10:
        result = download(Es10Functions(es10.call), es9, AC)
    assert result.success and result.iccid == ICCID and result.notification_sent
    assert [e[0] for e in orders.events] == ["delivered", "installed"]
    assert [p.iccid for p in card.core.state.profiles] == [ICCID]


@pytest.mark.parametrize("late_call", ["authenticateClient", "getBoundProfilePackage"])
def test_expired_transaction_is_refused_and_nothing_installed(tmp_path: Path,
                                                              late_call: str) -> None:
    es9, orders, clock, card = _setup(tmp_path)

    def later() -> None:
        clock.now = clock.start + DEFAULT_SESSION_TTL + timedelta(seconds=1)
    es9.before[late_call] = later
    with es10_session(EuiccLoopback(card)) as es10:
        functions = Es10Functions(es10.call)
        with pytest.raises(Es9Refused) as refused:
            download(functions, es9, AC)
        # SGP.22 §5.6: TransactionId (8.10.1), Unknown (3.9)
        assert (refused.value.function, refused.value.subject, refused.value.reason) == (
            late_call, "8.10.1", "3.9")
        # the LPA ended the eUICC's session as well: nothing left to cancel (invalidTransactionId
        # 5), and a BPP has no session to go to
        assert schema.decode("CancelSessionResponse", functions.cancel_session(
            es9.transaction_id, 127)) == ("cancelSessionResponseError", 5)
        with pytest.raises(Es10Error) as no_session:
            es10.call(bytes.fromhex("BF3600"))
        assert no_session.value.sw == 0x6985
    assert card.core.state.profiles == []
    assert "delivered" not in [e[0] for e in orders.events]
    assert es9.calls[-1] == late_call  # no cancelSession to an SM-DP+ that closed the session


def test_expired_download_order_is_refused(tmp_path: Path) -> None:
    es9, orders, _clock, card = _setup(tmp_path, order_ttl=-timedelta(minutes=1))
    with es10_session(EuiccLoopback(card)) as es10, pytest.raises(Es9Refused) as refused:
        download(Es10Functions(es10.call), es9, AC)
    # Download order (8.8.5), Time to Live Expired (4.10)
    assert (refused.value.subject, refused.value.reason) == ("8.8.5", "4.10")
    # nothing installed; the order is ended (the store moves its profile to error)
    assert card.core.state.profiles == [] and orders.events == [("expired", ICCID)]
