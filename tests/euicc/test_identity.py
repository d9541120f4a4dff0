"""The virtual eUICC's own identity from the development RSP PKI (esim.rsp_pki): its chain
verifies as SGP.22 requires (EID in the certificate, the EUM's name constraints), the keys are
written 0600 and reused, and the SM-DP+ certificates of the same PKI are accepted by it."""

from __future__ import annotations

import stat
from pathlib import Path

from esim.euicc.identity import default_eid, dev_euicc
from esim.rsp_pki import DevRspPki
from esim.sgp22.certificates import (
    RspRole,
    TrustedCis,
    verify_euicc_chain,
    verify_server_certificate,
)
from simcore.identifiers import Eid


def test_dev_identity_chain_and_files(tmp_path: Path) -> None:
    eid = default_eid()
    assert Eid.parse(eid).digits == eid
    core = dev_euicc(tmp_path / "rsp", state=tmp_path / "euicc.json")
    pki = DevRspPki(tmp_path / "rsp")
    identity = verify_euicc_chain(core.credentials.certificate, core.credentials.eum_certificate,
                                  TrustedCis([pki.ci().cert]), eid=eid)
    assert identity.eid == eid
    assert stat.S_IMODE((tmp_path / "rsp" / f"euicc-{eid}.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "rsp" / "ci.key").stat().st_mode) == 0o600
    # reused, not re-issued
    again = dev_euicc(tmp_path / "rsp")
    assert again.credentials.certificate == core.credentials.certificate
    for role, party in ((RspRole.DP_AUTH, pki.dpauth()), (RspRole.DP_PB, pki.dppb())):
        verify_server_certificate(party.cert, role, core.credentials.cis)
    other = dev_euicc(tmp_path / "rsp", eid="89049032000000000000000000000260")
    assert other.eid == "89049032000000000000000000000260"
