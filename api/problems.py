"""RFC 9457 problem details: every error the API returns is `application/problem+json`.

Each kind of error has a stable `type` URI (`urn:simsmith:problem:<slug>`, the one namespace of
every problem simsmith answers, the ES2+ routes' included), listed in `PROBLEM_TYPES` with its
status and title, documented in docs/api.md and the OpenAPI spec. A
domain error from simcore maps to one type by its class (most specific class first). Details are
the domain error's message, which by construction never carries a secret; unexpected errors give
no detail at all (the log has the request ID to find them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from esim.es2plus.messages import ADMIN_PROTOCOL, ADMIN_PROTOCOL_HEADER
from esim.es2plus.messages import PATH_PREFIX as ES2PLUS_PATH_PREFIX
from hsm_sim.ecies import MacFailure, MalformedSchemeOutput
from simcore.apikeys import InvalidApiKey
from simcore.audit import AuditChainBroken
from simcore.db import SchemaNotCurrent
from simcore.errors import Conflict, InvalidInput, NotFound, SimsmithError
from simcore.esim_orders import OrderNotCancellable
from simcore.hsm_access import HsmUnavailable
from simcore.idempotency import IdempotencyInProgress, IdempotencyKeyReused
from simcore.inventory import NoSimAvailable
from simcore.lifecycle import StaleVersion, TransitionNotAllowed
from simcore.smdp.port import SmdpAnswerInvalid, SmdpRefused, SmdpUnavailable

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:simsmith:problem:"


@dataclass(frozen=True)
class ProblemType:
    slug: str
    status: int
    title: str

    @property
    def uri(self) -> str:
        return TYPE_PREFIX + self.slug


_TYPES = [
    ProblemType("unauthenticated", 401, "Missing, unknown or revoked API key"),
    ProblemType("insufficient-scope", 403, "The API key lacks the scope this route needs"),
    ProblemType("es2plus-requires-https", 403, "ES2+ runs over HTTPS only"),
    ProblemType("not-found", 404, "No such resource"),
    ProblemType("method-not-allowed", 405, "Method not allowed"),
    ProblemType("no-stock", 409, "Nothing in stock matches the request"),
    ProblemType("transition-not-allowed", 409, "The lifecycle does not allow this change"),
    ProblemType("stale-version", 409, "The resource changed since the version given"),
    ProblemType("conflict", 409, "The current state forbids the operation"),
    ProblemType("idempotency-in-progress", 409,
                "A request with this Idempotency-Key is still being processed"),
    ProblemType("idempotency-key-reused", 422,
                "The Idempotency-Key was already used for a different request"),
    ProblemType("invalid-input", 422, "A value in the request is malformed"),
    ProblemType("validation-error", 422, "The request does not match the schema"),
    ProblemType("smdp-refused", 409, "The SM-DP+ refused the operation"),
    ProblemType("smdp-unavailable", 503, "The SM-DP+ cannot be reached"),
    ProblemType("smdp-bad-answer", 502, "The SM-DP+ answered something simsmith cannot use"),
    ProblemType("audit-chain-broken", 409, "The audit log does not verify"),
    ProblemType("service-unavailable", 503, "A backing service is not ready"),
    ProblemType("suci-mac-failure", 422, "The SUCI's MAC tag does not verify"),
    ProblemType("http-error", 400, "The request could not be handled"),
    ProblemType("internal-error", 500, "Internal error"),
]
PROBLEM_TYPES: dict[str, ProblemType] = {t.slug: t for t in _TYPES}

# Most specific first: the first class an error is an instance of names its type.
_BY_CLASS: list[tuple[type[BaseException], str]] = [
    (InvalidApiKey, "unauthenticated"),
    (NoSimAvailable, "no-stock"),
    (NotFound, "not-found"),
    (StaleVersion, "stale-version"),
    (IdempotencyInProgress, "idempotency-in-progress"),
    (IdempotencyKeyReused, "idempotency-key-reused"),
    (OrderNotCancellable, "conflict"),
    (TransitionNotAllowed, "transition-not-allowed"),
    (SmdpRefused, "smdp-refused"),
    (SmdpUnavailable, "smdp-unavailable"),
    (SmdpAnswerInvalid, "smdp-bad-answer"),
    (AuditChainBroken, "audit-chain-broken"),
    (HsmUnavailable, "service-unavailable"),
    (MacFailure, "suci-mac-failure"),
    (MalformedSchemeOutput, "invalid-input"),
    (SchemaNotCurrent, "service-unavailable"),
    (Conflict, "conflict"),
    (InvalidInput, "invalid-input"),
    (SimsmithError, "conflict"),
]


class Problem(BaseModel):
    """RFC 9457 problem details, with simsmith's extensions."""

    type: str = Field(description="Stable URI of the kind of error (urn:simsmith:problem:…)")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = Field(default=None, description="The request path")
    request_id: str | None = None
    field: str | None = Field(default=None, description="The input at fault, if one is")
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Schema violations: location, message, type")


class ProblemError(Exception):
    """Raised by API code to answer with a given problem type."""

    def __init__(self, slug: str, detail: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        self.slug = slug
        self.detail = detail
        self.headers = dict(headers or {})
        super().__init__(detail or slug)


def problem_response(request: Request, slug: str, detail: str | None = None, *,
                     status: int | None = None, headers: Mapping[str, str] | None = None,
                     **extra: Any) -> JSONResponse:
    t = PROBLEM_TYPES[slug]
    headers = dict(headers or {})
    if request.url.path.startswith(ES2PLUS_PATH_PREFIX):
        # SGP.22 §6.5.1: every answer on an ES2+ path names the protocol, errors included.
        headers.setdefault(ADMIN_PROTOCOL_HEADER, ADMIN_PROTOCOL)
    body = Problem(type=t.uri, title=t.title, status=status or t.status, detail=detail,
                   instance=request.url.path, request_id=getattr(request.state, "request_id",
                                                                 None), **extra)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status or t.status,
                        media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Never echo the input back: it may be anything the client sent.
    return [{"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", ""),
             "type": e.get("type", "")} for e in exc.errors()]


def classify(exc: BaseException) -> ProblemType:
    """The problem type of a domain error (by its class), else internal-error; the console
    shows the same status and title as the API would."""
    for cls, slug in _BY_CLASS:
        if isinstance(exc, cls):
            return PROBLEM_TYPES[slug]
    return PROBLEM_TYPES["internal-error"]


def response_for(request: Request, exc: BaseException) -> JSONResponse:
    """The problem response for any exception (domain, HTTP, validation, unexpected)."""
    if isinstance(exc, ProblemError):
        return problem_response(request, exc.slug, exc.detail, headers=exc.headers)
    if isinstance(exc, RequestValidationError):
        return problem_response(request, "validation-error", "the request does not match "
                                "the schema", errors=_validation_errors(exc))
    if isinstance(exc, StarletteHTTPException):
        slug = {401: "unauthenticated", 403: "insufficient-scope", 404: "not-found",
                405: "method-not-allowed"}.get(exc.status_code, "http-error")
        status = exc.status_code if slug == "http-error" else None
        return problem_response(request, slug, str(exc.detail), status=status,
                                headers=getattr(exc, "headers", None))
    for cls, slug in _BY_CLASS:
        if isinstance(exc, cls):
            extra: dict[str, Any] = {}
            if isinstance(exc, InvalidInput):
                extra["field"] = exc.field
            headers = {"WWW-Authenticate": "Bearer"} if slug == "unauthenticated" else None
            return problem_response(request, slug, str(exc), headers=headers, **extra)
    return problem_response(request, "internal-error")


def openapi_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries documenting the problem types a route can answer with."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        slugs = [t.uri for t in _TYPES if t.status == status]
        out[status] = {"model": Problem, "content": {PROBLEM_MEDIA_TYPE: {}},
                       "description": "Problem details; type one of: " + ", ".join(slugs)}
    return out
