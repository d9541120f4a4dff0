"""`Idempotency-Key` on every POST: a route class every router uses.

A POST with the header is recorded per API key (simcore.idempotency): the first request runs and
its response (status, media type, body; success or a 4xx problem) is stored; a repeat with the
same method, path and body gets that response again with `Idempotent-Replayed: true`; the same key
with another request is a 422 `idempotency-key-reused`; a repeat while the first still runs is a
409 `idempotency-in-progress`. A 5xx is not stored, so the client may retry with the same key.

Values an answer gives once and the store keeps only as a hash (an eSIM order's confirmation
code) are not stored in clear here either: a replay carries null in their place.

A route marked `@records_key` (the eSIM order) has its service record the key inside the
transaction of its effect instead (`request.state.idempotency`, simcore.idempotency.Claim): a
read-only lookup first, the key and the effect committed together, then the answer stored. One
write transaction fewer per POST; a request whose service refused it (4xx) leaves no record, so
a retry runs again (as Stripe does for requests that never started executing).
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
            fp = idempotency.fingerprint("POST", request.url.path, await request.body())
            if in_service:
                return await in_service_handler(request, int(api_key.id or 0), key, fp)
            try:
                stored = await run_in_threadpool(idempotency.begin, ctx.engine,
                                                 int(api_key.id or 0), key, fp)
            except SimsmithError as e:
                return response_for(request, e)
            if stored is not None:
                return _replay(stored)
            try:
                response = await original(request)
            except _KNOWN as e:
                response = response_for(request, e)
            except BaseException:
                await run_in_threadpool(idempotency.abandon, ctx.engine, int(api_key.id or 0),
                                        key)
                raise
            if response.status_code >= 500:
                await run_in_threadpool(idempotency.abandon, ctx.engine, int(api_key.id or 0),
                                        key)
            else:
                content_type = response.headers.get("content-type")
                body = storable(bytes(response.body), content_type)
                await run_in_threadpool(
                    idempotency.complete, ctx.engine, int(api_key.id or 0), key,
                    idempotency.StoredResponse(response.status_code, content_type, body))
            return response

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
        return handler
