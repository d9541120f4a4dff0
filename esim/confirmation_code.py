"""Confirmation codes, GSMA SGP.22 §3.1.3 (confirmation code) and §5.3.2 (ES2+.ConfirmOrder).

The end user types the confirmation code (CC); the LPA sends
`Hashed Confirmation Code = SHA256(SHA256(CC) || TransactionID)`. The SM-DP+ therefore keeps only
SHA256(CC) (`hash_confirmation_code`) and checks what arrives with a constant-time comparison.
SHA256(CC) of a short numeric code is still guessable offline: store it like a secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from esim.errors import ConfirmationCodeMismatch

MIN_TRANSACTION_ID = 1
MAX_TRANSACTION_ID = 16  # SGP.22 TransactionId ::= OCTET STRING (SIZE(1..16))


def generate_confirmation_code(digits: int = 8) -> str:
    """A random numeric confirmation code of `digits` digits (4 to 32)."""
    if not 4 <= digits <= 32:
        raise ValueError("a confirmation code has 4 to 32 digits")
    return "".join(secrets.choice("0123456789") for _ in range(digits))


def hash_confirmation_code(code: str) -> bytes:
    """SHA256(CC): the only form of the code an SM-DP+ stores."""
    if not code:
        raise ValueError("the confirmation code is empty")
    return hashlib.sha256(code.encode("utf-8")).digest()


def hashed_confirmation_code(code_hash: bytes, transaction_id: bytes) -> bytes:
    """SHA256(SHA256(CC) || TransactionID), as the LPA computes it."""
    if len(code_hash) != 32:
        raise ValueError("the stored confirmation-code hash must be 32 bytes (SHA-256)")
    if not MIN_TRANSACTION_ID <= len(transaction_id) <= MAX_TRANSACTION_ID:
        raise ValueError("a TransactionID is 1 to 16 bytes")
    return hashlib.sha256(code_hash + transaction_id).digest()


def verify_confirmation_code(code_hash: bytes, transaction_id: bytes, received: bytes) -> None:
    """Check the hashed confirmation code an LPA sent; raise ConfirmationCodeMismatch if wrong."""
    expected = hashed_confirmation_code(code_hash, transaction_id)
    if not hmac.compare_digest(expected, received):
        raise ConfirmationCodeMismatch("the hashed confirmation code does not match")
