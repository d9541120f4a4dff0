"""The SM-DP+ address an LPA is given (GSMA SGP.22 v2.5 §4.1: the activation code's
`SM-DP+ Address` is the SM-DP+'s FQDN; the LPA opens ES9+ at `https://<address>/gsma/rsp2/es9plus`
and checks the server certificate against it, §2.6.6), and the Matching ID beside it.

An address an LPA cannot use — `localhost`, an IP literal, a single label, a malformed name —
would make every activation code simsmith hands out useless, so it is refused when simsmith
starts (the configured address) and when an SM-DP+ answers with one (ConfirmOrder's
`smdpAddress`), not discovered at the first customer's phone. A lab can let simsmith start with
such an address explicitly (`SIMSMITH_SMDP_ALLOW_LAB_ADDRESS=1`, logged loudly), e.g. to run
its ES2+ listener for interoperability tests of the ES2+ functions. Activation codes take an FQDN
(SGP.22 §4.1) or a lab `host:port` (esim.activation_code): `127.0.0.1:8443`, the address of
`simsmith serve`'s ES9+ listener in a development workspace, so an LPA on the same machine can
download what it orders.
"""

from __future__ import annotations

import ipaddress
import logging
import re

import idna

from esim.activation_code import ActivationCode
from esim.errors import ActivationCodeError
from simcore.errors import InvalidInput

log = logging.getLogger(__name__)

_LAB_HINT = "set SIMSMITH_SMDP_ALLOW_LAB_ADDRESS=1 to allow it in a lab"
_MATCHING_ID = re.compile(r"[0-9A-Z-]{1,255}\Z")  # SGP.22 §4.1: 0-9, A-Z and '-'
_LAB_PORT = re.compile(r"([^:\[\]]+):([0-9]{1,5})\Z")


class SmdpAddressInvalid(InvalidInput):
    """An SM-DP+ address an LPA could not use."""


def check_smdp_address(address: str, *, field: str = "SIMSMITH_SMDP_ADDRESS",
                       allow_lab: bool = False, _lab_address: str | None = None) -> str:
    """`address` if it is an FQDN an LPA can reach; SmdpAddressInvalid naming `field` if not.

    FQDN here: at least two labels, each a valid IDNA 2008 label (RFC 5891), at most 253
    characters, a top-level label that is not all digits; no IP literal, no `localhost`, no
    port or path. `allow_lab` lets a non-FQDN through (with a warning), never a malformed one."""
    value = address.strip().rstrip(".")
    lab_port = _LAB_PORT.match(value)
    if lab_port:
        # host:port, so an LPA on the same machine reaches a lab SM-DP+ (ES9+ listener on a
        # port of its own); an LPA reaches a real SM-DP+ at its FQDN on 443 (SGP.22 §2.6.6).
        if not allow_lab:
            raise SmdpAddressInvalid(field, f"{value!r} names a port; {_LAB_HINT}",
                                     expected="the SM-DP+'s FQDN, such as smdp.example.com")
        check_smdp_address(lab_port.group(1), field=field, allow_lab=True, _lab_address=value)
        try:
            ActivationCode(value, "X", lab=True)
        except ActivationCodeError as e:
            raise SmdpAddressInvalid(field, f"not usable in an activation code ({e})",
                                     value=value[:64]) from None
        return value
    if not value or any(c in value for c in "/:@ ?#$"):
        raise SmdpAddressInvalid(field, "not a host name (an SM-DP+ address is a bare FQDN: no "
                                 "scheme, port, path or '$')", value=address[:64],
                                 expected="an FQDN such as smdp.example.com")
    try:
        encoded = idna.encode(value.lower() if value.isascii() else value).decode()
    except idna.IDNAError as e:
        if not _is_ip(value):
            raise SmdpAddressInvalid(field, f"not a valid host name ({e})", value=value[:64],
                                     expected="an FQDN such as smdp.example.com") from None
        encoded = value
    if len(encoded) > 253:
        raise SmdpAddressInvalid(field, "longer than 253 characters",
                                 expected="an FQDN of at most 253 characters (RFC 1035)")
    labels = encoded.split(".")
    why = None
    if _is_ip(value):
        why = "an IP address, not an FQDN: the LPA checks the SM-DP+'s TLS certificate by name"
    elif labels[-1] == "localhost" or encoded == "localhost":
        why = "'localhost' is the phone itself for an LPA"
    elif len(labels) < 2:
        why = "a single label, not an FQDN"
    elif labels[-1].isdigit():
        why = "an all-numeric top-level label"
    if why is None:
        try:  # and exactly what an activation code takes (ASCII labels: an IDN as A-labels)
            ActivationCode(value, "X")
        except ActivationCodeError as e:
            raise SmdpAddressInvalid(field, f"not usable in an activation code ({e})",
                                     value=value[:64],
                                     expected="an FQDN of ASCII labels, such as "
                                     "smdp.example.com (an IDN in its xn-- form)") from None
        return value
    if allow_lab:
        log.warning("SM-DP+ address %r (%s) allowed by SIMSMITH_SMDP_ALLOW_LAB_ADDRESS: "
                    "activation codes naming it work in this lab only", _lab_address or value,
                    field)
        return value
    raise SmdpAddressInvalid(field, f"{value!r} is {why}; {_LAB_HINT}",
                             expected="the SM-DP+'s FQDN, such as smdp.example.com")


def check_matching_id(matching_id: str, *, field: str = "matchingId") -> str:
    """A Matching ID as SGP.22 §4.1 allows it in an activation code."""
    if not _MATCHING_ID.match(matching_id):
        raise InvalidInput(field, "not 1 to 255 characters of 0-9, A-Z and '-'",
                           value=matching_id[:64], expected="a Matching ID such as K7Q2M-4HJX9")
    return matching_id


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return False
    return True
