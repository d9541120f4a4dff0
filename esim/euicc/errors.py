"""Errors of the virtual eUICC."""

from __future__ import annotations

from esim.errors import EsimError


class Es10Refused(EsimError):
    """A command the eUICC cannot answer with a coded result; `status` is the status word
    (ISO 7816-4: 6A88 referenced data not found, 6985 conditions of use not satisfied, 6A80
    incorrect data)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
