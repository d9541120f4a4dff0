"""An SM-DP+'s ES9+ in process for the LPA tests: esim.sgp22's SM-DP+ functions behind the
`Es9Transport` interface (and, wrapped in httpx.MockTransport, behind HTTP). One profile per
matching ID; the state of each order ends `installed` when a verified successful
ProfileInstallationResult arrives."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization

from esim.confirmation_code import hash_confirmation_code, verify_confirmation_code
from esim.rsp_pki import DevRspPki
from esim.sgp22 import authentication as auth
from esim.sgp22 import signatures as sig
from esim.sgp22.bpp import build_bpp
from esim.sgp22.certificates import TrustedCis, subject_key_id
from esim.sgp22.es9plus import (
    CONFIRMATION_CODE_REFUSED,
    PATH_PREFIX,
    b64,
    failure,
    field_b64,
    field_transaction_id,
    success,
)
from esim.sgp22.notifications import InstallationResult, read_pending_notification
from esim.sgp22.tlv import encode_tlv
from tests.euicc.smdp_side import store_metadata


@dataclass
class Order:
    upp: bytes
    iccid: str
    cc: str | None = None
    state: str = "released"


@dataclass
class _Session:
    order: Order
    challenge: bytes
    server_challenge: bytes
    euicc: Any = None
    signature2: bytes = b""


@dataclass
class FakeSmdp:
    pki: DevRspPki
    address: str = "smdp.simsmith.test"
    orders: dict[str, Order] = field(default_factory=dict)
    sessions: dict[bytes, _Session] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def der(self, party: Any) -> bytes:
        return bytes(party.cert.public_bytes(serialization.Encoding.DER))

    def post(self, function: str, body: dict[str, Any]) -> dict[str, Any] | None:
        self.calls.append(function)
        return getattr(self, function)(body)  # type: ignore[no-any-return]

    def initiateAuthentication(self, body: dict[str, Any]) -> dict[str, Any]:
        tid = os.urandom(16)
        challenge = field_b64(body, "euiccChallenge")
        assert challenge is not None
        server_challenge = os.urandom(16)
        signed1 = auth.server_signed1(transaction_id=tid, euicc_challenge=challenge,
                                      server_address=self.address,
                                      server_challenge=server_challenge)
        self.sessions[tid] = _Session(order=Order(b"", ""), challenge=challenge,
                                      server_challenge=server_challenge)
        return success(
            transactionId=tid.hex().upper(), serverSigned1=b64(signed1),
            serverSignature1=b64(sig.sign(sig.software_signer(self.pki.dpauth().key), signed1,
                                          "serverSignature1")),
            euiccCiPKIdToBeUsed=b64(encode_tlv(b"\x04", subject_key_id(self.pki.ci().cert))),
            serverCertificate=b64(self.der(self.pki.dpauth())))

    def authenticateClient(self, body: dict[str, Any]) -> dict[str, Any]:
        tid = field_transaction_id(body)
        session = self.sessions[tid]
        asr = field_b64(body, "authenticateServerResponse")
        assert asr is not None
        euicc = auth.check_authenticate_server_response(
            asr, cis=TrustedCis([self.pki.ci().cert]), transaction_id=tid,
            server_address=self.address, server_challenge=session.server_challenge)
        session.euicc = euicc
        session.order = self.orders[euicc.matching_id or ""]
        signed2 = auth.smdp_signed2(transaction_id=tid,
                                    cc_required=session.order.cc is not None)
        signature2 = sig.sign(sig.software_signer(self.pki.dppb().key),
                              sig.smdp_signature2_input(signed2, euicc.euicc_signature1),
                              "smdpSignature2")
        session.signature2 = signature2
        return success(transactionId=tid.hex().upper(),
                       profileMetadata=b64(store_metadata(session.order.iccid)),
                       smdpSigned2=b64(signed2), smdpSignature2=b64(signature2),
                       smdpCertificate=b64(self.der(self.pki.dppb())))

    def getBoundProfilePackage(self, body: dict[str, Any]) -> dict[str, Any]:
        tid = field_transaction_id(body)
        session = self.sessions[tid]
        pdr = field_b64(body, "prepareDownloadResponse")
        assert pdr is not None
        prepared = auth.check_prepare_download_response(
            pdr, euicc=session.euicc.identity, transaction_id=tid,
            smdp_signature2=session.signature2)
        if session.order.cc is not None:
            try:
                verify_confirmation_code(hash_confirmation_code(session.order.cc), tid,
                                         prepared.hash_cc or b"")
            except Exception:
                del self.sessions[tid]
                return failure(CONFIRMATION_CODE_REFUSED, transaction_id=tid)
        bpp = build_bpp(upp=session.order.upp, store_metadata=store_metadata(session.order.iccid),
                        transaction_id=tid, eid=bytes.fromhex(session.euicc.eid),
                        otpk_euicc=prepared.otpk_euicc,
                        dppb_signer=sig.software_signer(self.pki.dppb().key))
        session.order.state = "downloaded"
        return success(transactionId=tid.hex().upper(), boundProfilePackage=b64(bpp.der))

    def handleNotification(self, body: dict[str, Any]) -> None:
        der = field_b64(body, "pendingNotification")
        assert der is not None
        result = read_pending_notification(der)
        if isinstance(result, InstallationResult):
            session = self.sessions.pop(result.transaction_id)
            result.verify(session.euicc.identity.public_key)
            session.order.state = "installed" if result.success else "error"
        return None

    def cancelSession(self, body: dict[str, Any]) -> dict[str, Any]:
        self.sessions.pop(field_transaction_id(body), None)
        return success()

    def http(self) -> httpx.MockTransport:
        """The same SM-DP+ behind HTTP (httpx.MockTransport), checking path and headers."""
        def handle(request: httpx.Request) -> httpx.Response:
            assert request.url.host == self.address and request.url.scheme == "https"
            assert request.url.path.startswith(PATH_PREFIX + "/")
            assert request.headers["X-Admin-Protocol"].startswith("gsma/rsp/v2")
            answer = self.post(request.url.path.rsplit("/", 1)[1], json.loads(request.content))
            if answer is None:
                return httpx.Response(204)
            return httpx.Response(200, json=answer)
        return httpx.MockTransport(handle)
