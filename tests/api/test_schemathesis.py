"""schemathesis against the app's own OpenAPI spec: generated requests for every operation, and
for each response — no 5xx, a documented status code, the documented content type and a body
that matches its schema. (Rejecting a schema-valid but meaningless value, e.g. a cursor the API
never issued, with 422 is intended, so that check is not run.)"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from schemathesis.checks import CHECKS
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.main import create_app
from api.settings import ApiSettings
from simcore import apikeys, db, esim_orders, inventory, msisdn_pool, ranges
from simcore.identifiers import Iccid
from tests.vendor_import.helpers import make_hsm


def _app() -> tuple[Any, str]:
    home = Path(tempfile.mkdtemp(prefix="simsmith-st-"))
    eng = db.make_engine(f"sqlite:///{home / 'simsmith.db'}")
    db.upgrade(eng)
    ranges.add_range(eng, "iccid", Iccid.from_body("8988280000000000000").digits,
                     Iccid.from_body("8988280000000099999").digits, name="i", actor="t")
    ranges.add_range(eng, "imsi", "001010000000000", "001010000099999", name="m", actor="t")
    inventory.generate_sims(eng, 40, batch="p", actor="t")
    inventory.generate_sims(eng, 40, batch="e", actor="t", kind="esim")
    esim_orders.stock_profiles(eng, actor="t")
    msisdn_pool.add_msisdn_range(eng, "447700900000", "447700900099", name="n", actor="t")
    key = apikeys.create(eng, "schemathesis", ["admin"], actor="t")[1]
    settings = ApiSettings(home=home, webhooks_enabled=False, api_key_cache_seconds=0)
    # An HSM: an upload to /v1/imports is sealed under a key it makes (simcore.import_uploads).
    return create_app(settings, engine=eng, hsm=make_hsm(home / "hsm")), key


APP, KEY = _app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
CHECKS_RUN = [*CHECKS.get_by_names(["not_a_server_error"]), status_code_conformance,
              content_type_conformance, response_schema_conformance]


@pytest.mark.slow
@schema.parametrize()
@hsettings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_conforms(case: Any) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"}, checks=CHECKS_RUN)
