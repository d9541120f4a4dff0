"""Key check values: a short fingerprint that identifies a key without revealing it.

`kcv` is the AES-CMAC form (NIST SP 800-38B over one all-zero block, first 3 bytes), as ANSI
X9.24-1 and TR-31 use for AES keys. `legacy_kcv` is the older AES-ECB-of-zeros form (first 3 bytes)
that many SIM vendors still print; it is labelled "legacy" wherever it is shown. For 2-key and
3-key TDES keys, `tdes_kcv` is the classic 3DES-ECB-of-zeros form.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from hsm_sim.errors import BadLength

__all__ = ["KCV_LEN", "kcv", "legacy_kcv", "tdes_kcv"]

KCV_LEN = 3
_AES_SIZES = (16, 24, 32)


def _check_aes(key: bytes) -> None:
    if len(key) not in _AES_SIZES:
        raise BadLength(f"an AES key must be 16, 24 or 32 bytes, got {len(key)}")


def kcv(key: bytes) -> bytes:
    """AES-CMAC KCV: CMAC_K(0^128), first 3 bytes."""
    _check_aes(key)
    mac = CMAC(algorithms.AES(key))
    mac.update(bytes(16))
    return mac.finalize()[:KCV_LEN]


def legacy_kcv(key: bytes) -> bytes:
    """Legacy AES KCV: E_K(0^128), first 3 bytes."""
    _check_aes(key)
    return Cipher(algorithms.AES(key), modes.ECB()).encryptor().update(bytes(16))[:KCV_LEN]


def tdes_kcv(key: bytes) -> bytes:
    """TDES KCV: 3DES-ECB of 8 zero bytes, first 3 bytes (2-key or 3-key TDES)."""
    from hsm_sim.eki import tdes_ecb_encrypt

    return tdes_ecb_encrypt(key, bytes(8))[:KCV_LEN]
