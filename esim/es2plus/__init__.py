"""GSMA SGP.22 ES2+ (operator ⇄ SM-DP+): messages, status codes, the HTTPS/mTLS client.

The SM-DP+ side backed by the inventory lives in simcore.smdp.es2plus (it needs the store);
its HTTP routes in api.routers.es2plus.
"""

from esim.es2plus.client import CallResult, Es2PlusClient
from esim.es2plus.codes import FunctionExecutionStatus, StatusCode
from esim.es2plus.errors import (
    Es2PlusError,
    Es2PlusExpired,
    Es2PlusFunctionFailed,
    Es2PlusProtocolError,
    Es2PlusTimeout,
    Es2PlusTlsError,
    Es2PlusTransportError,
)

__all__ = [
    "CallResult",
    "Es2PlusClient",
    "Es2PlusError",
    "Es2PlusExpired",
    "Es2PlusFunctionFailed",
    "Es2PlusProtocolError",
    "Es2PlusTimeout",
    "Es2PlusTlsError",
    "Es2PlusTransportError",
    "FunctionExecutionStatus",
    "StatusCode",
]
