"""`Idempotency-Key` on every POST: a route class every router uses.

A POST with the header is recorded per API key (simcore.idempotency): the first request runs and
its response (status, media type, body; success or a 4xx problem) is stored; a repeat with the
same method, path, query and body gets that response again with `Idempotent-Replayed: true`; the
same key with another request is a 422 `idempotency-key-reused`; a repeat while the first still
runs is a 409 `idempotency-in-progress`. A 5xx is not stored, so the client may retry with the
same key.

Values an answer gives once and the store keeps only as a hash (an eSIM order's confirmation
code) are not stored in clear here either: a replay carries null in their place.

A route marked `@records_key` (the eSIM order) has its service record the key inside the
transaction of its effect instead (`request.state.idempotency`, simcore.idempotency.Claim): a
read-only lookup first, the key and the effect committed together, then the answer stored. One
write transaction fewer per POST; a request whose service refused it (4xx) leaves no record, so
a retry runs again (as Stripe does for requests that never started executing).

A route marked `@streams_body` (an upload of up to 1 GiB) reads its body as a stream and is never
held whole: the wrapper does not read it. The endpoint feeds each chunk to `request.state.
idempotency` (a `StreamedKey`, or None) as it reads it, then calls its `begin` once the body is
whole — the key is recorded then, or the stored answer replayed — and the wrapper completes or
abandons the record as for any POST. A request refused before its body was whole records nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from api.deps import authenticate, ctx_of
from api.problems import ProblemError, response_for
from simcore import idempotency
from simcore.errors import SimsmithError

_F = TypeVar("_F", bound=Callable[..., Any])
HEADER = "idempotency-key"
_KNOWN = (SimsmithError, ProblemError, HTTPException, RequestValidationError)
# Top-level JSON members shown once and kept by their service as a hash only.
NOT_STORED = ("confirmation_code",)


def storable(body: bytes, content_type: str | None) -> str:
    """The response body as the idempotency record keeps it: NOT_STORED members nulled."""
    text = body.decode("utf-8", "replace")
    if not (content_type or "").startswith("application/json") or not any(
            f'"{name}"' in text for name in NOT_STORED):
        return text
    data = json.loads(text)
    if isinstance(data, dict) and any(data.get(name) is not None for name in NOT_STORED):
        data.update({name: None for name in NOT_STORED if name in data})
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text


def records_key(endpoint: _F) -> _F:
    """Mark a route whose service records the Idempotency-Key in its own transaction: the
    endpoint reads `request.state.idempotency` (a Claim, or None) and passes it on."""
    endpoint.records_idempotency_key = True  # type: ignore[attr-defined]
    return endpoint


def streams_body(endpoint: _F) -> _F:
    """Mark a route that reads its body as a stream: the key's fingerprint is fed by the
    endpoint (`request.state.idempotency`, a StreamedKey or None), not read here first."""
    endpoint.streams_idempotent_body = True  # type: ignore[attr-defined]
    return endpoint


class Replayed(Exception):
    """Raised by `StreamedKey.begin` when the key has an answer: the wrapper replays it."""

    def __init__(self, stored: idempotency.StoredResponse) -> None:
        super().__init__("replayed")
        self.stored = stored


class StreamedKey:
    """The Idempotency-Key of a `@streams_body` request: fingerprinted chunk by chunk."""

    def __init__(self, engine: Any, api_key_id: int, key: str, request: Request) -> None:
        self._engine, self._api_key_id, self._key = engine, api_key_id, key
        self._fp = idempotency.StreamFingerprint("POST", request.url.path, request.url.query)
        self.begun = False

    def update(self, chunk: bytes) -> None:
        self._fp.update(chunk)

    async def begin(self) -> None:
        """Record the key as pending now that the body is whole, or raise Replayed with its
        answer (IdempotencyKeyReused / IdempotencyInProgress as for any POST)."""
        stored = await run_in_threadpool(idempotency.begin, self._engine, self._api_key_id,
                                         self._key, self._fp.hexdigest())
        if stored is not None:
            raise Replayed(stored)
        self.begun = True


def _replay(stored: idempotency.StoredResponse) -> Response:
    return Response(stored.body, status_code=stored.status_code, media_type=stored.content_type,
                    headers={"Idempotent-Replayed": "true"})


class IdempotentRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()
        if "POST" not in (self.methods or ()):
            return original

        async def handler(request: Request) -> Response:
            key = request.headers.get(HEADER)
            if key is None:
                return await original(request)
            api_key = await authenticate(request)  # 401 before anything is recorded
            ctx = ctx_of(request)
            if streamed:
                return await streamed_handler(request, int(api_key.id or 0), key)
            fp = idempotency.fingerprint("POST", request.url.path, await request.body(),
                                         request.url.query)
            if in_service:
                return await in_service_handler(request, int(api_key.id or 0), key, fp)
            try:
                stored = await run_in_threadpool(idempotency.begin, ctx.engine,
                                                 int(api_key.id or 0), key, fp)
            except SimsmithError as e:
                return response_for(request, e)
            if stored is not None:
                return _replay(stored)
            return await run_recorded(request, int(api_key.id or 0), key)

        async def run_recorded(request: Request, api_key_id: int, key: str,
                               recorded: Callable[[], bool] = lambda: True) -> Response:
            """Run the route under a key recorded pending (by `begin`, or — `recorded()` — by
            the endpoint itself), then store its answer, or abandon the key on a 5xx."""
            engine = ctx_of(request).engine
            try:
                response = await original(request)
            except _KNOWN as e:
                response = response_for(request, e)
            except BaseException:
                if recorded():
                    await run_in_threadpool(idempotency.abandon, engine, api_key_id, key)
                raise
            if not recorded():
                return response
            if response.status_code >= 500:
                await run_in_threadpool(idempotency.abandon, engine, api_key_id, key)
            else:
                content_type = response.headers.get("content-type")
                body = storable(bytes(response.body), content_type)
                await run_in_threadpool(
                    idempotency.complete, engine, api_key_id, key,
                    idempotency.StoredResponse(response.status_code, content_type, body))
            return response

        async def streamed_handler(request: Request, api_key_id: int, key: str) -> Response:
            try:
                idempotency.check_key(key)  # before a byte of the body is read
            except SimsmithError as e:
                return response_for(request, e)
            state = request.state.idempotency = StreamedKey(ctx_of(request).engine, api_key_id,
                                                            key, request)
            try:
                return await run_recorded(request, api_key_id, key, lambda: state.begun)
            except Replayed as r:
                return _replay(r.stored)

        async def in_service_handler(request: Request, api_key_id: int, key: str,
                                     fp: str) -> Response:
            engine = ctx_of(request).engine
            try:
                stored = await run_in_threadpool(idempotency.lookup, engine, api_key_id, key, fp)
            except SimsmithError as e:
                return response_for(request, e)
            if stored is not None:
                return _replay(stored)
            claim = request.state.idempotency = idempotency.Claim(api_key_id, key, fp)

            async def abandon() -> None:
                # Only a record this request committed is its own: before that, a pending
                # record under the key belongs to a concurrent request and must stay.
                if claim.committed:
                    await run_in_threadpool(idempotency.abandon, engine, api_key_id, key)

            try:
                response = await original(request)
            except idempotency.ClaimTaken:
                try:  # the other request's answer, or 409 while it runs
                    return _replay(await run_in_threadpool(idempotency.existing, engine,
                                                           api_key_id, key, fp))
                except SimsmithError as e:
                    return response_for(request, e)
            except _KNOWN as e:
                response = response_for(request, e)
                if claim.committed and claim.keep:
                    # Its effect is still held (simcore.idempotency.Claim.keep): the failure is
                    # this key's answer, so a retry cannot claim a second profile.
                    await run_in_threadpool(
                        idempotency.complete, engine, api_key_id, key,
                        idempotency.StoredResponse(response.status_code,
                                                   response.headers.get("content-type"),
                                                   bytes(response.body).decode()))
                    return response
                await abandon()  # refused before its commit: nothing of its own to remove
                return response
            except BaseException:
                await abandon()
                raise
            if response.status_code >= 300:
                await abandon()
                return response
            content_type = response.headers.get("content-type")
            await run_in_threadpool(
                idempotency.complete, engine, api_key_id, key,
                idempotency.StoredResponse(response.status_code, content_type,
                                           storable(bytes(response.body), content_type)))
            return response

        in_service = getattr(self.endpoint, "records_idempotency_key", False)
        streamed = getattr(self.endpoint, "streams_idempotent_body", False)
        return handler
