"""Hsm.import_clear_many: a vendor file's codes and OTA keys wrapped a chunk at a time, each ref
the same as import_clear would give (owner and type bound), on both backends."""

from __future__ import annotations

from typing import Any

import pytest

from hsm_sim.errors import BadLength, WrongOwner
from hsm_sim.kcv import kcv
from hsm_sim.keyref import KeyRef, KeyType


def test_many_at_once_round_trip(hsm: Any) -> None:
    ota = bytes(range(16))
    items = [("8949000000000000011", KeyType.PIN, b"1234\xff\xff\xff\xff"),
             ("8949000000000000011", KeyType.PUK, b"12345678"),
             ("8949000000000000011", KeyType.KIC, ota),
             ("8949000000000000029", KeyType.PIN, b"9876\xff\xff\xff\xff")]
    refs = hsm.import_clear_many(items)
    assert [(r.owner, r.key_type) for r in refs] == [(o, t) for o, t, _ in items]
    assert hsm.reveal_code(refs[0], owner="8949000000000000011") == "1234"
    assert hsm.reveal_code(refs[1], owner="8949000000000000011") == "12345678"
    assert hsm.reveal_code(refs[3], owner="8949000000000000029") == "9876"
    assert hsm.kcv(KeyRef.from_token(refs[2].to_token())) == kcv(ota)
    with pytest.raises(WrongOwner):
        hsm.reveal_code(refs[0], owner="8949000000000000029")
    assert hsm.import_clear_many([]) == []


def test_many_refuses_what_one_refuses(hsm: Any) -> None:
    with pytest.raises(BadLength):
        hsm.import_clear_many([("8949000000000000011", KeyType.PIN, b"1234")])
    with pytest.raises(ValueError):
        hsm.import_clear_many([("not an owner!", KeyType.PIN, b"1234\xff\xff\xff\xff")])
