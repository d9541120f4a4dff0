"""api: the thin FastAPI provisioning API (routers, dependencies, models kept apart).

`main.create_app` builds the app: /v1/sims, /v1/esim-profiles, /v1/msisdns, /v1/imports,
/v1/audit, /v1/webhooks, customer care's access codes, health and metrics, and the embedded
SM-DP+'s ES2+ endpoints (routers/), with API keys and scopes (deps.py), idempotency keys
(idempotent.py), RFC 9457 problem+json errors (problems.py), signed webhooks (webhook_worker.py)
and a multi-worker server (server.py). Routes only call simcore services; no business rule lives
here. See docs/api.md.
"""
