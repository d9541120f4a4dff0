"""JSON responses from models a route has already built and validated.

A route that returns a model has FastAPI validate and serialise it a second time against its
`response_model`; on the hot routes (SIM lookup, eSIM order) that second pass is a measurable
share of the request. These routes declare `response_model=` (so OpenAPI still documents the
body, and schemathesis checks it) and return `model_response(...)`.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Response
from pydantic import BaseModel


def model_response(model: BaseModel, status_code: int = 200,
                   headers: Mapping[str, str] | None = None) -> Response:
    return Response(model.__pydantic_serializer__.to_json(model), status_code=status_code,
                    headers=headers, media_type="application/json")
