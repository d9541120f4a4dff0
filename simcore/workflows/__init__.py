"""Durable workflows (design §10; issue 18): activation, suspend/resume, SIM swap and
termination as persisted sagas — each step recorded with its own idempotency key, retried with
backoff, compensated in reverse on permanent failure, claimed by workers with FOR UPDATE SKIP
LOCKED (docs/workflows.md).

- models.py         the `workflow` and `workflow_step` tables (migration 0800)
- engine.py         steps, definitions, claim / advance / compensate, the Worker
- steps.py          steps the workflows share: keys ready, HLR, SM-DP+, notify
- activation.py     the activation workflow
- service_flows.py  suspend, resume, termination, swap
- service.py        start_*, get_workflow, list_workflows (API, CLI, console)

May import simcore's services, simcore.ports (HLR) and simcore.smdp (SM-DP+); never api/ or
tools/.
"""
