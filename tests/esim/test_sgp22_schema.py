"""SGP.22 Annex H ASN.1 (esim.sgp22.schema): every structure of the recorded session round-trips
byte for byte; bad input is refused with Asn1Error naming the type."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esim.sgp22 import schema
from esim.sgp22.errors import Asn1Error
from tests.esim.sgp22_vectors import data, field, h, session

RECORDED = [
    ("InitiateAuthentication", "request.euiccInfo1", "EUICCInfo1"),
    ("InitiateAuthentication", "response.serverSigned1", "ServerSigned1"),
    ("AuthenticateClient", "request.authenticateServerResponse", "AuthenticateServerResponse"),
    ("AuthenticateClient", "response.profileMetadata", "StoreMetadataRequest"),
    ("AuthenticateClient", "response.smdpSigned2", "SmdpSigned2"),
    ("GetBoundProfilePackage", "request.prepareDownloadResponse", "PrepareDownloadResponse"),
    ("GetBoundProfilePackage", "response.boundProfilePackage", "BoundProfilePackage"),
    ("HandleNotification", "request.pendingNotification", "PendingNotification"),
]


@pytest.mark.parametrize(("function", "name", "type_name"), RECORDED)
def test_recorded_structures_round_trip_byte_exact(function: str, name: str,
                                                   type_name: str) -> None:
    der = field(function, name)
    assert schema.encode(type_name, schema.decode(type_name, der)) == der


@pytest.mark.parametrize(("key", "type_name"), [
    ("initialiseSecureChannelRequest_BF23", "InitialiseSecureChannelRequest"),
    ("configureISDPRequest", "ConfigureISDPRequest"),
    ("storeMetadataRequest", "StoreMetadataRequest"),
])
def test_bsp_payloads_round_trip(key: str, type_name: str) -> None:
    der = h(session()["bsp_decoded"][key])
    assert schema.encode(type_name, schema.decode(type_name, der)) == der


def test_bpp_file_round_trips_and_has_the_recorded_parts() -> None:
    bpp = data("bpp.der")
    value = schema.decode("BoundProfilePackage", bpp)
    assert schema.encode("BoundProfilePackage", value) == bpp
    isc = value["initialiseSecureChannelRequest"]
    assert isc["transactionId"] == h(session()["transactionId"])
    assert isc["controlRefTemplate"] == {"keyType": b"\x88", "keyLen": b"\x10",
                                         "hostId": b"mahlzeit"}
    assert len(value["sequenceOf86"]) == 13


def test_decoded_values_carry_the_spec_meaning() -> None:
    resp = schema.decode("AuthenticateServerResponse",
                         field("AuthenticateClient", "request.authenticateServerResponse"))
    assert resp[0] == "authenticateResponseOk"
    signed1 = resp[1]["euiccSigned1"]
    assert signed1["serverAddress"] == session()["smdp_address"]
    ctx = signed1["ctxParams1"]
    assert ctx[0] == "ctxParamsForCommonAuthentication"
    assert ctx[1]["matchingId"] == session()["matchingId"]
    pir = schema.decode("PendingNotification", field("HandleNotification",
                                                     "request.pendingNotification"))
    assert pir[0] == "profileInstallationResult"
    # 2.999.10: first arc 2 with a second arc >= 40 (asn1tools alone decodes 26.39.10)
    assert pir[1]["profileInstallationResultData"]["smdpOid"] == "2.999.10"


def test_oid_with_large_second_arc_encodes_and_decodes() -> None:
    # AUTOMATIC TAGS: dpOid is [0]
    der = schema.encode("DpProprietaryData", {"dpOid": "2.999.10"})
    assert der == bytes.fromhex("3005800388370a")
    assert schema.decode("DpProprietaryData", der) == {"dpOid": "2.999.10"}
    assert schema.decode("DpProprietaryData", bytes.fromhex("3005800355040a")) == {
        "dpOid": "2.5.4.10"}


def test_explicit_default_is_kept() -> None:
    value = {"iccid": bytes(10), "serviceProviderName": "x", "profileName": "y",
             "profileClass": 2}
    der = schema.encode("StoreMetadataRequest", value)
    assert der.endswith(bytes.fromhex("950102"))
    assert schema.decode("StoreMetadataRequest", der) == value
    del value["profileClass"]
    assert schema.decode("StoreMetadataRequest", schema.encode("StoreMetadataRequest",
                                                               value)) == value


@pytest.mark.parametrize(("der", "message"), [
    (b"", "Ran out of data"),
    (bytes.fromhex("300380"), "contents"),
    (bytes.fromhex("3000"), "transactionId"),
    (bytes.fromhex("30848fffffff"), "contents"),
])
def test_bad_der_is_refused_with_the_type_named(der: bytes, message: str) -> None:
    with pytest.raises(Asn1Error, match=message) as info:
        schema.decode("ServerSigned1", der)
    assert info.value.type_name == "ServerSigned1"


def test_trailing_bytes_and_unknown_types_are_refused() -> None:
    der = field("InitiateAuthentication", "response.serverSigned1")
    with pytest.raises(Asn1Error, match="1 trailing bytes"):
        schema.decode("ServerSigned1", der + b"\x00")
    with pytest.raises(Asn1Error, match="no such type"):
        schema.decode("NoSuchType", der)
    with pytest.raises(Asn1Error, match="cannot encode"):
        schema.encode("ServerSigned1", {"transactionId": b"x"})


@pytest.mark.slow
@settings(deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_never_escape_as_other_errors(junk: bytes) -> None:
    for type_name in ("BoundProfilePackage", "AuthenticateServerResponse", "PendingNotification"):
        with contextlib.suppress(Asn1Error):
            schema.decode(type_name, junk)


@given(tid=st.binary(min_size=1, max_size=16), challenge=st.binary(min_size=16, max_size=16),
       address=st.text(max_size=40))
@pytest.mark.slow
def test_server_signed1_round_trip(tid: bytes, challenge: bytes, address: str) -> None:
    value = {"transactionId": tid, "euiccChallenge": challenge, "serverAddress": address,
             "serverChallenge": challenge[::-1]}
    der = schema.encode("ServerSigned1", value)
    assert schema.decode("ServerSigned1", der) == value
