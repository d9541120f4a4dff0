"""The recorded download through the APDU layer in process: the LPA's ES10 client
(TERMINAL CAPABILITY, MANAGE CHANNEL, SELECT ISD-R on a logical channel, chained STORE DATA,
61xx + GET RESPONSE) against the virtual eUICC's card layer."""

from __future__ import annotations

import pytest

from esim.euicc.card import ATR
from esim.lpa.es10 import Es10Error
from esim.lpa.functions import Es10Functions, LpaError
from esim.sgp22.notifications import InstallationResult, read_pending_notification
from simcore.euicc import EuiccLoopback, es10_session, virtual_euicc
from tests.esim.sgp22_vectors import data, field, h, session
from tests.euicc.recorded import cert, flip, recorded_asr, recorded_euicc


def _download(functions: Es10Functions) -> bytes:
    assert functions.challenge() == h(session()["euiccChallenge"])
    ctx = recorded_asr()["euiccSigned1"]["ctxParams1"][1]
    functions.authenticate_server(
        server_signed1=field("InitiateAuthentication", "response.serverSigned1"),
        server_signature1=field("InitiateAuthentication", "response.serverSignature1"),
        ci_pkid=field("InitiateAuthentication", "response.euiccCiPKIdToBeUsed"),
        server_certificate=field("InitiateAuthentication", "response.serverCertificate"),
        ctx_params1=ctx)
    functions.prepare_download(
        smdp_signed2=field("AuthenticateClient", "response.smdpSigned2"),
        smdp_signature2=field("AuthenticateClient", "response.smdpSignature2"),
        smdp_certificate=field("AuthenticateClient", "response.smdpCertificate"))
    return functions.load_bpp(data("bpp.der"))


@pytest.mark.parametrize("block", [120, 255, 6])
def test_recorded_download_over_apdus(block: int) -> None:
    card = virtual_euicc(recorded_euicc())
    transport = EuiccLoopback(card)
    assert transport.atr == ATR and ATR[0] == 0x3B
    with es10_session(transport, block) as es10:
        assert es10.channel == 1
        functions = Es10Functions(es10.call)
        assert functions.eid() == session()["eid"]
        pir = _download(functions)
    result = read_pending_notification(pir)
    assert isinstance(result, InstallationResult) and result.success
    result.verify(cert("CERT_EUICC_ECDSA_NIST.pem"))
    assert bytes.fromhex(card.core.state.profiles[0].upp) == data("upp.der")
    # every STORE DATA block is one APDU; long answers add GET RESPONSEs
    assert transport.stats.by_ins[0xE2] >= -(-13107 // block)
    if block == 120:
        assert transport.stats.apdus < 160
    assert card.open_channels == {0}


def test_channel_rules() -> None:
    card = virtual_euicc(recorded_euicc())
    # STORE DATA without the ISD-R selected on that channel
    assert card.process(bytes.fromhex("80E2910003BF2E00")) == bytes.fromhex("6985")
    # a closed channel
    assert card.process(bytes.fromhex("81E2910003BF2E00")) == bytes.fromhex("6881")
    assert card.process(bytes.fromhex("0070000001")) == bytes.fromhex("019000")
    assert card.process(bytes.fromhex("01A4040010A0000005591010FFFFFFFF8900000100"))[0] == 0x61
    # block numbers must follow 0, 1, 2 …
    assert card.process(bytes.fromhex("81E2110103BF2E00")) == bytes.fromhex("6A86")
    answer = card.process(bytes.fromhex("81E2910003BF2E00"))
    assert answer == bytes.fromhex("6115")
    assert len(card.process(bytes.fromhex("81C0000015"))) == 0x15 + 2
    assert card.process(bytes.fromhex("81E2910003BF7F00")) == bytes.fromhex("6A88")
    assert card.process(bytes.fromhex("0070800100")[:4]) == bytes.fromhex("9000")
    assert card.open_channels == {0}


def test_refusals_reach_the_lpa_as_errors() -> None:
    card = virtual_euicc(recorded_euicc())
    with es10_session(EuiccLoopback(card)) as es10:
        functions = Es10Functions(es10.call)
        functions.challenge()
        with pytest.raises(LpaError) as info:
            functions.authenticate_server(
                server_signed1=field("InitiateAuthentication", "response.serverSigned1"),
                server_signature1=flip(field("InitiateAuthentication",
                                             "response.serverSignature1"), b"\x5f\x37", 20),
                ci_pkid=field("InitiateAuthentication", "response.euiccCiPKIdToBeUsed"),
                server_certificate=field("InitiateAuthentication", "response.serverCertificate"),
                ctx_params1=recorded_asr()["euiccSigned1"]["ctxParams1"][1])
        assert info.value.code == "invalidSignature"
        with pytest.raises(Es10Error) as refused:
            functions.load_bpp(data("bpp.der"))
        assert refused.value.sw == 0x6985
    assert card.core.state.profiles == []
