"""The virtual eUICC's identity: its EID (GSMA SGP.29), its key pair and CERT.EUICC.ECDSA
issued by the development EUM of esim.rsp_pki (SGP.22 §4.5.2), and the CIs it trusts."""

from __future__ import annotations

from pathlib import Path

from esim.euicc.es10 import EuiccCore
from esim.euicc.store import StateFile
from esim.rsp_pki import EUM_EID_PREFIX, DevRspPki
from esim.sgp22.authentication import EuiccCredentials
from esim.sgp22.certificates import TrustedCis
from esim.sgp22.signatures import software_signer
from simcore.identifiers import mod97_check_digits

# EUM prefix (89 049 032: SGP.29 test range), then 22 digits of our own
DEFAULT_EID_BODY = EUM_EID_PREFIX + "0" * 21 + "1"


def default_eid() -> str:
    body = DEFAULT_EID_BODY
    return body + mod97_check_digits(body)


def dev_euicc(pki_dir: Path, *, eid: str | None = None,
              state: Path | None = None) -> EuiccCore:
    """A virtual eUICC whose certificate comes from the development RSP PKI in `pki_dir`
    (created on first use) and whose profiles live in `state` (None: in memory)."""
    eid = eid or default_eid()
    pki = DevRspPki(pki_dir)
    me = pki.euicc(eid)
    credentials = EuiccCredentials(signer=software_signer(me.key), certificate=me.cert,
                                   eum_certificate=pki.eum().cert,
                                   cis=TrustedCis([pki.ci().cert]))
    return EuiccCore(credentials=credentials, eid=eid, state_file=StateFile(state))
