"""Administration: API keys (the key shown once at creation, revoke), webhook endpoints (the
signing secret shown once, deactivate, deliveries re-sent) and console users (a generated
password shown once, disable). Each through its simcore service, audited with the person."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from api.console.auth import CheckedForm, Need, text
from api.console.web import PREFIX, redirect, render
from api.deps import ctx_of
from simcore import apikeys, webhooks
from simcore.console import users
from simcore.console.sessions import Principal

router = APIRouter(prefix=PREFIX + "/admin", include_in_schema=False)
Admin = Annotated[Principal, Need("admin")]
Hooks = Annotated[Principal, Need("webhooks:manage")]


def _scopes(form: FormData) -> list[str]:
    return [s for s in form.getlist("scopes") if isinstance(s, str)]


@router.get("")
def overview(request: Request, _me: Admin) -> HTMLResponse:
    return render(request, "admin.html", {})


@router.get("/keys")
def keys_page(request: Request, _me: Admin) -> HTMLResponse:
    return render(request, "admin_keys.html", {
        "keys": apikeys.list_keys(ctx_of(request).engine), "scopes": apikeys.SCOPES})


@router.post("/keys")
def create_key(request: Request, me: Admin, form: CheckedForm) -> HTMLResponse:
    row, key = apikeys.create(ctx_of(request).engine, text(form, "name", max_len=64),
                              _scopes(form), actor=me.actor)
    return render(request, "shown_once.html", {
        "what": f"API key {row.name}", "label": "API key", "value": key,
        "note": f"Scopes: {row.scopes}. The store keeps only its SHA-256: it cannot be shown "
                "again.", "back": f"{PREFIX}/admin/keys"})


@router.post("/keys/{key_id}/revoke")
def revoke_key(request: Request, key_id: int, me: Admin, _form: CheckedForm) -> Response:
    apikeys.revoke(ctx_of(request).engine, key_id, actor=me.actor)
    return redirect(f"{PREFIX}/admin/keys")


@router.get("/webhooks")
def webhooks_page(request: Request, _me: Hooks) -> HTMLResponse:
    engine = ctx_of(request).engine
    subs = webhooks.list_subscriptions(engine)
    dead = webhooks.list_deliveries(engine, state="dead", limit=1000)[-20:][::-1]
    return render(request, "admin_webhooks.html", {
        "subs": subs, "dead": dead, "backlog": webhooks.backlog(engine)})


@router.post("/webhooks")
def create_webhook(request: Request, me: Hooks, form: CheckedForm) -> HTMLResponse:
    topics = text(form, "topics", max_len=1024).replace(",", " ").split() or ["*"]
    row, secret = webhooks.create_subscription(ctx_of(request).engine,
                                               text(form, "url", max_len=2048), topics,
                                               actor=me.actor)
    return render(request, "shown_once.html", {
        "what": f"webhook endpoint {row.url}", "label": "Signing secret", "value": secret,
        "note": "Give it to the receiver to check signatures; it is never shown again.",
        "back": f"{PREFIX}/admin/webhooks"})


@router.post("/webhooks/{sub_id}/deactivate")
def deactivate_webhook(request: Request, sub_id: int, me: Hooks, _form: CheckedForm
                       ) -> Response:
    webhooks.deactivate(ctx_of(request).engine, sub_id, actor=me.actor)
    return redirect(f"{PREFIX}/admin/webhooks")


@router.get("/users")
def users_page(request: Request, _me: Admin) -> HTMLResponse:
    return render(request, "admin_users.html", {
        "users": users.list_users(ctx_of(request).engine), "scopes": apikeys.SCOPES})


@router.post("/users")
def add_user(request: Request, me: Admin, form: CheckedForm) -> HTMLResponse:
    password = users.generate_password()
    row = users.create(ctx_of(request).engine, text(form, "username", max_len=64), password,
                       _scopes(form), actor=me.actor)
    return render(request, "shown_once.html", {
        "what": f"console user {row.username}", "label": "Password", "value": password,
        "note": f"Scopes: {row.scopes}. Hand it over safely; only its argon2id hash is kept.",
        "back": f"{PREFIX}/admin/users"})


@router.post("/users/{username}/disable")
def disable_user(request: Request, username: str, me: Admin, _form: CheckedForm) -> Response:
    users.disable(ctx_of(request).engine, username, actor=me.actor)
    return redirect(f"{PREFIX}/admin/users")
