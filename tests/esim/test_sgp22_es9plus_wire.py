"""ES9+ wire helpers (esim.sgp22.es9plus): base64 and transactionId fields, answers' headers."""

from __future__ import annotations

import json

import pytest

from esim.sgp22 import es9plus as wire
from esim.sgp22.es9plus import Es9PlusFieldError
from tests.esim.sgp22_vectors import exchange, field


def test_recorded_fields_parse() -> None:
    body = json.loads(exchange("AuthenticateClient")["request_body"])
    assert wire.field_transaction_id(body).hex().upper() == body["transactionId"]
    assert wire.field_b64(body, "authenticateServerResponse") == field(
        "AuthenticateClient", "request.authenticateServerResponse")
    answer = json.loads(exchange("AuthenticateClient")["response_body"])
    assert wire.status_of(answer) == ("Executed-Success", None)


@pytest.mark.parametrize(("body", "name", "missing"), [
    ({}, "transactionId", True),
    ({"transactionId": "XYZ"}, "transactionId", False),
    ({"transactionId": "ABC"}, "transactionId", False),
    ({"transactionId": "00" * 17}, "transactionId", False),
    ({"transactionId": 5}, "transactionId", False),
])
def test_bad_transaction_ids(body: dict[str, object], name: str, missing: bool) -> None:
    with pytest.raises(Es9PlusFieldError) as info:
        wire.field_transaction_id(body)
    assert (info.value.field, info.value.missing) == (name, missing)


@pytest.mark.parametrize("value", ["!!!!", "AAA", 12, "A" * 40])
def test_bad_base64(value: object) -> None:
    with pytest.raises(Es9PlusFieldError, match="x"):
        wire.field_b64({"x": value}, "x", max_length=36)
    assert wire.field_b64({}, "x", optional=True) is None


def test_failure_answer_carries_the_code() -> None:
    body = wire.failure(wire.TRANSACTION_ID_UNKNOWN, "no session", bytes.fromhex("0a0b"))
    assert body["transactionId"] == "0A0B"
    status, code = wire.status_of(body)
    assert status == "Failed" and code == wire.TRANSACTION_ID_UNKNOWN
    assert str(code).startswith("8.10.1/3.9")
    with pytest.raises(Es9PlusFieldError):
        wire.status_of({"header": {}})
