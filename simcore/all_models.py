"""Imports every module that defines tables, so SQLModel.metadata is complete for Alembic and the
schema tests. An area adding tables adds its module here (one line)."""

import simcore.models
import simcore.models_api
import simcore.models_console
import simcore.models_suci
import simcore.ports.hlr_models
import simcore.smdp.es9plus_models
import simcore.smdp.models
import simcore.workflows.models  # noqa: F401
