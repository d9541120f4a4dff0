"""The API's routers, assembled in one place: `ROUTERS` lists module names under api.routers.

Another area adds its router here with one line; a module that does not exist yet (e.g. es2plus
before it is written) is skipped, so the app always starts.
"""

from __future__ import annotations

import importlib

from fastapi import APIRouter

ROUTERS: list[str] = [
    "health",
    "sims",
    "esim_profiles",
    "msisdns",
    "audit",
    "webhooks",
    "imports",
    "care",  # issue 7: customer care reads PIN1/PUK1 (scope care:access-codes, not via admin)
    "service_codes",  # issue 13: PIN2/PUK2/ADM1 for a service centre (scope service:card-codes)
    "es2plus",  # issue 8: SM-DP+ side endpoints and HandleDownloadProgressInfo
    "suci",  # issue 20: SUCI de-concealment for a UDM (scope suci:deconceal)
    "workflows",  # issue 18: activations, suspensions, resumptions, swaps, terminations
]


def routers() -> list[APIRouter]:
    out = []
    for name in ROUTERS:
        try:
            module = importlib.import_module(f"api.routers.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"api.routers.{name}":
                raise  # the module exists but something it imports does not: a real error
            continue
        out.append(module.router)
    return out
