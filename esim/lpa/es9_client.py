"""ES9+ over HTTPS, LPA side (GSMA SGP.22 v2.x §6.5): JSON POSTs to
https://<SM-DP+ address>/gsma/rsp2/es9plus/<function> with `X-Admin-Protocol`, TLS verified
against the system trust store or a given CA bundle (on by default; SGP.22 §2.6.6 requires the
LPA to authenticate the SM-DP+'s TLS certificate)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx

from esim.errors import EsimError
from esim.sgp22.es9plus import ADMIN_PROTOCOL, ADMIN_PROTOCOL_HEADER, PATH_PREFIX

USER_AGENT = "simsmith-lpa"


class Es9HttpError(EsimError):
    """The SM-DP+ could not be reached or answered outside ES9+ (`function`, `detail`)."""

    def __init__(self, function: str, detail: str) -> None:
        super().__init__(f"ES9+.{function}: {detail}")
        self.function = function
        self.detail = detail


def tls_context(ca_bundle: Path | None) -> ssl.SSLContext:
    """Certificate and host name verification on, against `ca_bundle` or the system store."""
    context = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class HttpEs9:
    """An `Es9Transport` to one SM-DP+. `transport` is for tests (httpx.MockTransport)."""

    def __init__(self, address: str, *, ca_bundle: Path | None = None, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base = f"https://{address}{PATH_PREFIX}/"
        kwargs: dict[str, Any] = {"timeout": timeout, "headers": {
            ADMIN_PROTOCOL_HEADER: ADMIN_PROTOCOL, "User-Agent": USER_AGENT,
            "Content-Type": "application/json"}}
        if transport is not None:
            kwargs["transport"] = transport
        else:
            kwargs["verify"] = tls_context(ca_bundle)
        self._client = httpx.Client(**kwargs)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpEs9:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def post(self, function: str, body: dict[str, Any]) -> dict[str, Any] | None:
        try:
            response = self._client.post(self.base + function, json=body)
        except httpx.HTTPError as exc:
            raise Es9HttpError(function, f"{type(exc).__name__}: {exc}") from None
        if response.status_code == 204:
            return None
        if response.status_code != 200:
            raise Es9HttpError(function, f"HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise Es9HttpError(function, "the answer is not JSON") from None
        if not isinstance(answer, dict):
            raise Es9HttpError(function, "the answer is not a JSON object")
        return answer
