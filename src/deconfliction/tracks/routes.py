"""Live picture API: post track states, read tracks, feed counters and alerts (JSON and CoT).

The routes read the live parts from ``app.state.live`` (a ``tracks.loop.Live``); without it they
answer 503.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from deconfliction.errors import Problem
from deconfliction.feeds.cot import alert_cot
from deconfliction.http import ActorDep, ServicesDep, read
from deconfliction.parties.service import require_acting
from deconfliction.tracks import service
from deconfliction.tracks.loop import Live
from deconfliction.tracks.models import AlertOut, FeedOut, IngestOut, TrackOut, TracksIn

router = APIRouter(prefix="/v1/tracks", tags=["tracks"])
alerts_router = APIRouter(prefix="/v1/alerts", tags=["alerts"])

COT_MEDIA_TYPE = "application/xml"


class Unavailable(Problem):
    status = 503
    title = "Service unavailable"


def live(request: Request) -> Live:
    found = getattr(request.app.state, "live", None)
    if not isinstance(found, Live):
        raise Unavailable("the live picture is not running on this server")
    return found


LiveDep = Annotated[Live, Depends(live)]
AlertFilter = Annotated[Literal["active", "cleared", "all"], Query()]


@router.post("", response_model=IngestOut)
def post_tracks(body: TracksIn, actor: ActorDep, live: LiveDep) -> IngestOut:
    """States of your party's tracks (the party is your token's; a body naming one is
    refused). Each state is kept unless it is stale, in the future, outside the area or older
    than the state held; those are listed in ``dropped`` with the reason."""
    require_acting(actor)
    return service.ingest(live.intake, live.api_counters(actor.party), actor, body)


@router.get("", response_model=list[TrackOut])
def list_tracks(
    actor: ActorDep, live: LiveDep, svc: ServicesDep, party: str | None = None
) -> list[TrackOut]:
    """The live tracks you may see: your party's (the mediator: all; an observer: none)."""
    return service.visible_tracks(live.picture, actor, svc.clock(), party)


@router.get("/feeds", response_model=list[FeedOut])
def list_feeds(actor: ActorDep, live: LiveDep) -> list[FeedOut]:
    """Counters of the feeds bound to your party (the mediator: all): received, accepted,
    ignored, and dropped by reason."""
    return service.visible_feeds(live.feed_status(), actor)


def _active(state: str) -> bool | None:
    return {"active": True, "cleared": False}.get(state)


@alerts_router.get("", response_model=list[AlertOut])
def list_alerts(
    svc: ServicesDep,
    actor: ActorDep,
    state: AlertFilter = "active",
    party: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    after: Annotated[int, Query(ge=0)] = 0,
) -> list[AlertOut]:
    """Alerts your party is in (the mediator: all): ``active`` (raised or updated, the
    default), ``cleared`` or ``all``."""
    with read(svc) as conn:
        return service.list_alerts(
            conn, actor, active=_active(state), party=party, limit=limit, after=after
        )


@alerts_router.get("/cot")
def alerts_cot(svc: ServicesDep, actor: ActorDep, state: AlertFilter = "active") -> Response:
    """The same alerts as a CoT stream: one event per alert, back to back, as a TAK server
    sends them on a TCP connection (split on ``</event>``)."""
    now = svc.clock()
    with read(svc) as conn:
        alerts = service.list_alerts(conn, actor, active=_active(state))
    body = "\n".join(alert_cot(a, now) for a in alerts)
    return Response(body + ("\n" if body else ""), media_type=COT_MEDIA_TYPE)


@alerts_router.get("/{alert_id}", response_model=AlertOut)
def get_alert(alert_id: int, svc: ServicesDep, actor: ActorDep) -> AlertOut:
    with read(svc) as conn:
        return service.get_alert(conn, actor, alert_id)


@alerts_router.get("/{alert_id}/cot")
def get_alert_cot(alert_id: int, svc: ServicesDep, actor: ActorDep) -> Response:
    """One alert as a CoT event (a well-formed XML document)."""
    with read(svc) as conn:
        alert = service.get_alert(conn, actor, alert_id)
    return Response(alert_cot(alert, svc.clock()), media_type=COT_MEDIA_TYPE)
