"""Errors of the key-custody boundary: one base class, one subclass per thing that went wrong.

Messages name the key reference, owner or input at fault and never carry key material.
"""

from __future__ import annotations

from simcore.errors import SimsmithError


class HsmError(SimsmithError):
    """Base class of every error raised by hsm_sim (simsmith's one error base above it)."""


class DevModeWarning(UserWarning):
    """The HSM runs on a dev passphrase or the sealed dev file: insecure by design."""


class AuthenticationFailure(HsmError):
    """A MAC (MAC-A, MAC-S, RES) did not verify (TS 33.102 §6.3)."""


class BadLength(HsmError, ValueError):
    """An input has a length the spec does not allow."""


class WrongOwner(HsmError):
    """A key blob was presented for an owner other than the one it is bound to."""


class WrongKeyType(HsmError):
    """A key blob was presented as another key type than the one it is bound to."""


class TamperedBlob(HsmError):
    """A wrapped key failed its integrity check (edited, truncated or wrapped under another KEK)."""


class BadKCV(HsmError):
    """A key or component does not match the key check value it was announced with."""


class NoSuchKey(HsmError):
    """A named key (KEK, transport or export key) does not exist."""


class DuplicateKey(HsmError):
    """A named key already exists."""


class HsmLocked(HsmError):
    """The HSM has not been opened with its master key (ceremony components or passphrase)."""


class WrongPurpose(HsmError):
    """A KEK was used for another purpose than the one it was created for."""


class ExportRefused(HsmError):
    """An export was asked in a form the target is not allowed to receive."""


class KeyMismatch(HsmError):
    """A private key and the public key (certificate) it was given with are not one pair."""
