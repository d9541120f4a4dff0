"""Certificate faults on the mutual-TLS connection are refused, with errors that say so, and
change nothing: no client certificate, one from an unknown CA, an expired one, and a server
certificate the client does not trust."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from esim.es2plus import Es2PlusClient, Es2PlusTlsError
from esim.pki import dev_init
from tests.es2plus.conftest import REQUESTER, Pki, Server, add_profiles, make_client, profile

pytestmark = pytest.mark.storage


@pytest.mark.parametrize("cert", ["foreign", "expired"])
def test_untrusted_client_certificate_is_refused(engine: Engine, endpoint: object,
                                                 https_server: Server, pki: Pki,
                                                 cert: str) -> None:
    iccid = add_profiles(engine, 1)[0]
    with make_client(https_server, pki, cert) as c, pytest.raises(Es2PlusTlsError) as ei:
        c.download_order(iccid=iccid)
    message = str(ei.value)
    assert "client certificate" in message and "DownloadOrder" in message
    assert profile(engine, iccid).profile_state == "available"


def test_no_client_certificate_is_refused(engine: Engine, endpoint: object,
                                          https_server: Server, pki: Pki) -> None:
    iccid = add_profiles(engine, 1)[0]
    with Es2PlusClient(https_server.url, REQUESTER, ca=pki.dev.ca, retry_backoff=0) as c, \
            pytest.raises(Es2PlusTlsError, match="refused the TLS handshake"):
        c.download_order(iccid=iccid)
    assert profile(engine, iccid).profile_state == "available"


def test_server_from_another_ca_is_refused(engine: Engine, endpoint: object,
                                           https_server: Server, pki: Pki,
                                           tmp_path: object) -> None:
    from pathlib import Path

    other = dev_init(Path(str(tmp_path)) / "other")
    iccid = add_profiles(engine, 1)[0]
    with Es2PlusClient(https_server.url, REQUESTER, ca=other.ca, cert=pki.dev.client_cert,
                       key=pki.dev.client_key, retries=3, retry_backoff=0) as c, \
            pytest.raises(Es2PlusTlsError, match="server's certificate was refused"):
        c.download_order(iccid=iccid)
    assert profile(engine, iccid).profile_state == "available"


def test_client_key_never_in_errors_or_repr(pki: Pki, https_server: Server) -> None:
    key_text = pki.dev.client_key.read_text()
    c = make_client(https_server, pki)
    assert "PRIVATE" not in repr(c) and key_text not in repr(c)
    c.close()
