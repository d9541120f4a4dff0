"""ES2+ errors: what a call to an SM-DP+ (or from an operator) can end in besides success.

- `Es2PlusFunctionFailed`: the peer answered and refused (status Failed or Expired), with the
  SGP.22 subject and reason codes (`code`, e.g. 8.2.6/3.3) and its message.
- `Es2PlusTransportError`: no usable answer: connection refused or reset (`Es2PlusTlsError` when
  the TLS handshake failed: unknown, expired or wrongly signed certificates), or a timeout
  (`Es2PlusTimeout`).
- `Es2PlusProtocolError`: an answer that is not ES2+ (HTTP error status, not JSON, no header,
  an unknown status value, a missing mandatory field).

Every error names the function and the functionCallIdentifier it belongs to; none carries a
confirmation code, a key or a request body.
"""

from __future__ import annotations

from esim.errors import EsimError
from esim.es2plus.codes import FunctionExecutionStatus, StatusCode


class Es2PlusError(EsimError):
    """Base class of ES2+ errors."""

    def __init__(self, function: str, message: str, *, call_id: str | None = None) -> None:
        self.function = function
        self.call_id = call_id
        where = f" (call {call_id})" if call_id else ""
        super().__init__(f"ES2+ {function}{where}: {message}")


class Es2PlusFunctionFailed(Es2PlusError):
    """The peer executed nothing: functionExecutionStatus Failed (or Expired, the subclass)."""

    def __init__(self, function: str, status: FunctionExecutionStatus, code: StatusCode | None,
                 *, call_id: str | None = None, subject_identifier: str | None = None,
                 peer_message: str | None = None) -> None:
        self.status = status
        self.code = code
        self.subject_identifier = subject_identifier
        self.peer_message = peer_message
        text = str(status)
        if code is not None:
            text += f" {code}"
        if subject_identifier:
            text += f" [{subject_identifier}]"
        if peer_message:
            text += f": {peer_message}"
        super().__init__(function, text, call_id=call_id)

    @property
    def subject_code(self) -> str | None:
        return self.code.subject if self.code else None

    @property
    def reason_code(self) -> str | None:
        return self.code.reason if self.code else None


class Es2PlusExpired(Es2PlusFunctionFailed):
    """functionExecutionStatus Expired: the peer gave up on the function (e.g. a timeout)."""


class Es2PlusTransportError(Es2PlusError):
    """No answer could be had: connection refused, reset or closed. `request_sent` is False when
    the request certainly never reached the peer (no connection, TLS handshake refused): the
    function was not executed."""

    request_sent: bool = True


class Es2PlusTlsError(Es2PlusTransportError):
    """The mutual TLS handshake failed (certificate unknown, expired, wrong CA, host name)."""


class Es2PlusTimeout(Es2PlusTransportError):
    """The peer did not answer in time. The function may or may not have been executed."""


class Es2PlusProtocolError(Es2PlusError):
    """The peer answered something that is not an ES2+ response."""

    def __init__(self, function: str, message: str, *, call_id: str | None = None,
                 http_status: int | None = None) -> None:
        self.http_status = http_status
        super().__init__(function, message, call_id=call_id)
