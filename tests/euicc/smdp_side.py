"""A minimal SM-DP+ side for in-process tests, from esim.sgp22's SM-DP+ functions and the
recorded session's DPauth/DPpb keys: a fresh download of any UPP to the virtual eUICC."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives import serialization

from esim.build import build_package, get_compiled
from esim.compiled import KeySlot
from esim.lpa.functions import Es10Functions
from esim.params import SubscriberParams
from esim.saip.coding import iccid_to_ef
from esim.sgp22 import authentication as auth
from esim.sgp22 import schema
from esim.sgp22 import signatures as sig
from esim.sgp22.bpp import build_bpp
from esim.sgp22.certificates import subject_key_id
from esim.sgp22.tlv import encode_tlv
from tests.euicc.recorded import cert, key

KI = bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc")
OPC = bytes.fromhex("cd63cb71954a9f4e48a5994e37a02baf")
ADDRESS = "smdp.simsmith.test"


def milenage_upp(iccid: str = "8949440000000000017", imsi: str = "001010000000017",
                 **extra: Any) -> bytes:
    """A simsmith profile (usim-isim-milenage template) with Ki/OPc above."""
    compiled = get_compiled("usim-isim-milenage")

    def patch(buf: bytearray, slots: Sequence[KeySlot]) -> None:
        for slot in slots:
            value = {"ki": KI, "opc": OPC}.get(slot.name, os.urandom(slot.length))
            buf[slot.offset:slot.offset + slot.length] = value[:slot.length]
    return build_package(compiled, SubscriberParams(
        iccid=iccid, imsi=imsi, pin1="1234", puk1="12345678", pin2="5678", puk2="87654321",
        adm1="12345678", **extra), patch)


def store_metadata(iccid: str, name: str = "simsmith test") -> bytes:
    return schema.encode("StoreMetadataRequest", {
        "iccid": iccid_to_ef(iccid), "serviceProviderName": "simsmith", "profileName": name,
        "notificationConfigurationInfo": [
            {"profileManagementOperation": (b"\x70", 4), "notificationAddress": ADDRESS}]})


def download(functions: Es10Functions, upp: bytes, iccid: str, eid: str) -> bytes:
    """One complete download as an SM-DP+ would run it; returns the PIR."""
    tid = os.urandom(16)
    dpauth_key = key("SK_S_SM_DPauth_ECDSA_NIST.pem")
    dpauth = cert("CERT_S_SM_DPauth_ECDSA_NIST.pem")
    dppb = cert("CERT_S_SM_DPpb_ECDSA_NIST.pem")
    challenge = functions.challenge()
    signed1 = auth.server_signed1(transaction_id=tid, euicc_challenge=challenge,
                                  server_address=ADDRESS, server_challenge=os.urandom(16))
    ctx: dict[str, Any] = {"matchingId": "TEST", "deviceInfo": {
        "tac": bytes.fromhex("35290611"), "deviceCapabilities": {}}}
    asr = functions.authenticate_server(
        server_signed1=signed1,
        server_signature1=sig.sign(sig.software_signer(dpauth_key), signed1, "serverSignature1"),
        ci_pkid=encode_tlv(b"\x04", subject_key_id(cert("CERT_CI_ECDSA_NIST.pem"))),
        server_certificate=dpauth.public_bytes(serialization.Encoding.DER), ctx_params1=ctx)
    euicc_signature1 = sig.authenticate_server_response_parts(asr).signature_tlv
    signed2 = auth.smdp_signed2(transaction_id=tid, cc_required=False)
    signature2 = sig.sign(sig.software_signer(key("SK_S_SM_DPpb_ECDSA_NIST.pem")),
                          sig.smdp_signature2_input(signed2, euicc_signature1), "smdpSignature2")
    pdr = functions.prepare_download(smdp_signed2=signed2, smdp_signature2=signature2,
                                     smdp_certificate=dppb.public_bytes(
                                         serialization.Encoding.DER))
    value = schema.decode("PrepareDownloadResponse", pdr)[1]
    bpp = build_bpp(upp=upp, store_metadata=store_metadata(iccid), transaction_id=tid,
                    eid=bytes.fromhex(eid), otpk_euicc=bytes(value["euiccSigned2"]["euiccOtpk"]),
                    dppb_signer=sig.software_signer(key("SK_S_SM_DPpb_ECDSA_NIST.pem")))
    return functions.load_bpp(bpp.der)
