"""Fixtures for the card tests: the real pcscd + vpcd started by scripts/services/pcscd.sh
(its env file exported by scripts/test.sh) and virtual cards inserted into its slots.

Without SIMSMITH_TEST_PCSC the PC/SC tests skip, unless SIMSMITH_REQUIRE_SERVICES=1 (the full suite)
makes them fail: the full suite must never silently skip the real stack.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from cards.virtual.card import VirtualUicc
from cards.virtual.vpcd import VpcdCard
from tests.helpers.services import services_required


@dataclass(frozen=True)
class PcscEnv:
    host: str
    ports: list[int]
    readers: list[str]


@pytest.fixture(scope="session")
def pcsc() -> PcscEnv:
    if os.environ.get("SIMSMITH_TEST_PCSC") != "1":
        message = ("pcscd + vpcd not started: run scripts/services/pcscd.sh start and source "
                   "build/services/pcscd.env")
        if services_required():
            pytest.fail(message)
        pytest.skip(message)
    return PcscEnv(
        host=os.environ.get("SIMSMITH_VPCD_HOST", "127.0.0.1"),
        ports=[int(p) for p in os.environ["SIMSMITH_VPCD_PORTS"].split()],
        readers=os.environ["SIMSMITH_VPCD_READERS"].split("|"),
    )


Insert = Callable[..., tuple[VpcdCard, str]]


@pytest.fixture
def insert(pcsc: PcscEnv) -> Iterator[Insert]:
    """insert(card, slot=0, pull_after=None) -> (VpcdCard, reader name); pulled at teardown."""
    from cards.pcsc import wait_for_card_state

    inserted: list[tuple[VpcdCard, str]] = []

    def _insert(card: VirtualUicc, slot: int = 0,
                pull_after: int | None = None) -> tuple[VpcdCard, str]:
        reader = pcsc.readers[slot]
        wait_for_card_state(reader, present=False, timeout=5)
        vcard = VpcdCard(card, host=pcsc.host, port=pcsc.ports[slot],
                         pull_after=pull_after).start()
        inserted.append((vcard, reader))
        wait_for_card_state(reader, present=True, timeout=5)
        return vcard, reader

    yield _insert
    for vcard, _reader in inserted:
        vcard.stop()
    for _vcard, reader in inserted:
        wait_for_card_state(reader, present=False, timeout=5)
