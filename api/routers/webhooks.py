"""/v1/webhooks: subscriptions (the signing secret shown once), their deliveries, redelivery.

Deliveries are signed: `Simsmith-Signature: t=<unix>,v1=<HMAC-SHA256(secret, "<t>." + body)>`;
see docs/api.md for the receiver's verification snippet."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from api.deps import EngineDep, Scope, actor
from api.idempotent import IdempotentRoute
from api.pagination import CursorQuery, IdPath, IdQuery, LimitQuery, Page, int_cursor, next_cursor
from api.problems import openapi_responses
from api.schemas import DeliveryPublic, WebhookCreate, WebhookPublic
from simcore import webhooks
from simcore.models_api import ApiKey, WebhookDelivery, WebhookSubscription

router = APIRouter(tags=["webhooks"], route_class=IdempotentRoute,
                   responses=openapi_responses(401, 403, 404, 422))
Manager = Annotated[ApiKey, Scope("webhooks:manage")]


def _sub(row: WebhookSubscription, secret: str | None = None) -> WebhookPublic:
    return WebhookPublic(id=int(row.id or 0), url=row.url, topics=row.topics.split(),
                         active=row.active, created_at=row.created_at, secret=secret)


def _delivery(d: WebhookDelivery) -> DeliveryPublic:
    return DeliveryPublic(id=int(d.id or 0), subscription_id=d.subscription_id,
                          event_id=d.event_id, topic=d.topic, state=d.state,
                          attempts=d.attempts, next_attempt_at=d.next_attempt_at,
                          last_status=d.last_status, last_error=d.last_error,
                          created_at=d.created_at, delivered_at=d.delivered_at)


@router.post("/v1/webhooks", status_code=201)
def create(body: WebhookCreate, engine: EngineDep, key: Manager) -> WebhookPublic:
    """Subscribe a URL to event topics. The response holds the signing secret, once."""
    row, secret = webhooks.create_subscription(engine, body.url, body.topics, actor=actor(key),
                                               secret=body.secret)
    return _sub(row, secret)


@router.get("/v1/webhooks")
def list_subscriptions(engine: EngineDep, _k: Manager) -> list[WebhookPublic]:
    return [_sub(r) for r in webhooks.list_subscriptions(engine)]


@router.get("/v1/webhooks/deliveries")
def list_deliveries(engine: EngineDep, _k: Manager, cursor: CursorQuery = None,
                    limit: LimitQuery = 100, subscription_id: IdQuery = None,
                    state: str | None = None) -> Page[DeliveryPublic]:
    """Deliveries (pending, delivered, dead = dead letters), oldest first."""
    rows = webhooks.list_deliveries(engine, subscription_id=subscription_id, state=state,
                                    after=int_cursor(cursor), limit=limit)
    return Page(items=[_delivery(d) for d in rows],
                next_cursor=next_cursor([int(d.id or 0) for d in rows], limit))


@router.post("/v1/webhooks/deliveries/{delivery_id}/redeliver")
def redeliver(delivery_id: IdPath, engine: EngineDep, key: Manager) -> DeliveryPublic:
    """Queue a delivery again, attempts reset (e.g. a dead letter)."""
    return _delivery(webhooks.redeliver(engine, delivery_id, actor=actor(key)))


@router.get("/v1/webhooks/{subscription_id}")
def get_subscription(subscription_id: IdPath, engine: EngineDep, _k: Manager) -> WebhookPublic:
    return _sub(webhooks.get_subscription(engine, subscription_id))


@router.delete("/v1/webhooks/{subscription_id}")
def delete_subscription(subscription_id: IdPath, engine: EngineDep, key: Manager) -> WebhookPublic:
    """Deactivate: nothing more is sent; pending deliveries become dead letters."""
    return _sub(webhooks.deactivate(engine, subscription_id, actor=actor(key)))
