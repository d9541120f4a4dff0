"""api: the thin FastAPI provisioning API (routers, dependencies, models kept apart).

Will hold /v1/sims, /v1/esim-profiles, /v1/msisdns, /v1/imports, /v1/audit, /v1/webhooks with
API keys and scopes, idempotency keys, RFC 9457 problem+json errors and signed webhooks
(issue 7). Routes only call simcore services; no business rule lives here.
"""
