"""The virtual eUICC's identity: its EID (GSMA SGP.29), its key pair and CERT.EUICC.ECDSA
issued by the development EUM of esim.rsp_pki (SGP.22 §4.5.2), and the CIs it trusts.

An eUICC supports NIST P-256 and brainpoolP256r1 (SGP.22 §2.6.7) and may carry a chain per CI:
the virtual eUICC holds one per lab hierarchy (esim.rsp_pki.hierarchy_dir), each with its own
key pair on that hierarchy's curve, listed in EUICCInfo1/2 in the order of `curves`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from esim.euicc.es10 import EuiccCore
from esim.euicc.store import StateFile
from esim.rsp_pki import EUM_EID_PREFIX, LAB_CURVES, NIST_P256, DevRspPki, hierarchy_dir
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
              state: Path | None = None, curves: Sequence[str] | None = None) -> EuiccCore:
    """A virtual eUICC whose certificates come from the development RSP PKI in `pki_dir`
    (created on first use) and whose profiles live in `state` (None: in memory). `curves`:
    the hierarchies it has a chain in, in its order of preference (created on first use);
    default P-256 and every other lab hierarchy already in `pki_dir`."""
    eid = eid or default_eid()
    if curves is None:
        curves = [NIST_P256] + [c for c in LAB_CURVES if c != NIST_P256
                                and (hierarchy_dir(pki_dir, c) / "ci.pem").exists()]
    chains = []
    for curve in curves:
        pki = DevRspPki(hierarchy_dir(pki_dir, curve), curve)
        me = pki.euicc(eid)
        chains.append(EuiccCredentials(signer=software_signer(me.key), certificate=me.cert,
                                       eum_certificate=pki.eum().cert,
                                       cis=TrustedCis([pki.ci().cert])))
    return EuiccCore(credentials=chains, eid=eid, state_file=StateFile(state))
