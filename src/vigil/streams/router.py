"""Stream routes: create, list, read, rename, delete; send events (HTTP); flagged events, drift events, metrics;
and the WebSocket (`socket.py` holds its protocol)."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import orjson
from fastapi import APIRouter, Depends, Request, Response, WebSocket, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.requests import HTTPConnection

from vigil.core.pagination import Page
from vigil.identity.dependencies import IdentityDep, require
from vigil.identity.permissions import Permission
from vigil.identity.principal import Principal
from vigil.streams.events import plain_events
from vigil.streams.schemas import (
    AnomalyPublic,
    DriftPublic,
    Event,
    EventsRequest,
    EventsResponse,
    StreamCreate,
    StreamMetrics,
    StreamPublic,
    StreamUpdate,
)
from vigil.streams.service import StreamService
from vigil.streams.socket import StreamSocket
from vigil.streams.state import StreamRuntime
from vigil.web.created import CREATED, created
from vigil.web.deps import ContextDep, SessionDep
from vigil.web.endpoints import blocking
from vigil.web.idempotency_applied import replay_created, rerun_is_safe
from vigil.web.paging import Cursor, Limit
from vigil.web.routing import IndexedRouter

STREAM = "/api/v1/streams/{id}"
router = IndexedRouter(tags=["streams"])
# The WebSocket has no per-address dependency of the HTTP routes (those read an HTTP request): it limits itself.
ws_router = APIRouter(tags=["streams"])
Reader = Annotated[Principal, require(Permission.STREAMS_READ)]
Writer = Annotated[Principal, require(Permission.STREAMS_WRITE)]


async def get_runtime(connection: HTTPConnection) -> StreamRuntime:
    # async, as the plumbing's dependencies (web/deps.py): a plain `def` would cost a hop to the thread pool and
    # back on every batch (py-spy: the thread-pool hops were a third of the event loop's time on the batch path).
    runtime: StreamRuntime = connection.app.state.streams
    return runtime


RuntimeDep = Annotated[StreamRuntime, Depends(get_runtime)]


def _service(
    session: SessionDep, principal: Principal, app: ContextDep, runtime: StreamRuntime, identity: IdentityDep
) -> StreamService:
    return StreamService(session=session, scope=principal.scope, app=app, runtime=runtime, limiter=identity.limiter)


class Services:
    """The route's service, built from its named dependencies."""

    def __init__(self, session: SessionDep, app: ContextDep, runtime: RuntimeDep, identity: IdentityDep) -> None:
        self.session, self.app, self.runtime, self.identity = session, app, runtime, identity

    def of(self, principal: Principal) -> StreamService:
        return _service(self.session, principal, self.app, self.runtime, self.identity)


async def get_services(session: SessionDep, app: ContextDep, runtime: RuntimeDep, identity: IdentityDep) -> Services:
    # A class as a dependency is called in the thread pool, as a plain `def`: built here, on the event loop.
    return Services(session, app, runtime, identity)


ServicesDep = Annotated[Services, Depends(get_services)]


@router.post("/streams", status_code=status.HTTP_201_CREATED, responses=CREATED, summary="Create a stream")
def create_stream(data: StreamCreate, principal: Writer, services: ServicesDep, response: Response) -> StreamPublic:
    replay_created("streams", STREAM)
    return created(response, STREAM, services.of(principal).create(data=data, created_by=principal.user_id))


@router.get("/streams", summary="List streams, newest first")
@blocking
def list_streams(
    principal: Reader, services: ServicesDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[StreamPublic]:
    items, next_cursor = services.of(principal).list(limit=limit, cursor=cursor)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/streams/{stream_id}", summary="A stream: configuration, counters, last snapshot, latest drift events")
def get_stream(stream_id: str, principal: Reader, services: ServicesDep) -> StreamPublic:
    return services.of(principal).get(stream_id=stream_id)


@router.patch("/streams/{stream_id}", summary="Rename or describe a stream")
def update_stream(stream_id: str, data: StreamUpdate, principal: Writer, services: ServicesDep) -> StreamPublic:
    return services.of(principal).update(stream_id=stream_id, data=data)


@router.delete("/streams/{stream_id}", status_code=204, summary="Delete a stream and everything it kept")
def delete_stream(stream_id: str, principal: Writer, services: ServicesDep) -> Response:
    services.of(principal).delete(stream_id=stream_id)
    return Response(status_code=204)


def _events_body() -> dict[str, Any]:
    """The documented body of `send_events`, which parses it itself: `EventsRequest`, its models hoisted to the
    components (`web/docs.hoist_definitions`), as FastAPI would have documented it."""
    schema = EventsRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions = {**schema.pop("$defs", {}), "EventsRequest": schema}
    body = {"$ref": "#/components/schemas/EventsRequest", "$defs": definitions}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": body}}}}


_BATCH_MEMBERS = frozenset(("events",))


def _events(body: bytes, content_type: str | None) -> list[Event]:
    """The batch's events. A plain well-formed body (what the SDK and most clients send) is read by orjson as it
    is, without a validated object per event (pydantic's parse of a batch cost twice orjson's); anything else —
    malformed, another shape, NaN or huge integers, which orjson refuses — is read by `EventsRequest`, whose errors
    name the problem. Either way the event check (`check_events`) comes next. As for FastAPI's own bodies, a body
    declared as something else than JSON is not read as JSON."""
    media = (content_type or "application/json").split(";", 1)[0].strip().lower()
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        raise RequestValidationError(
            [{"loc": ("body",), "msg": "The body must be JSON (Content-Type: application/json).", "type": "json_type"}]
        )
    try:
        plain = plain_events(orjson.loads(body), members=_BATCH_MEMBERS)
    except orjson.JSONDecodeError:
        plain = None
    if plain is not None:
        return plain
    try:
        return EventsRequest.model_validate_json(body).events
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_input=False, include_url=False)]
        ) from exc


@router.post(
    "/streams/{stream_id}/events",
    summary="Score, then learn, a batch of events in seq order (exactly once; all or nothing)",
    response_model=EventsResponse,
    responses={413: {"description": "More events than the server's batch limit"}},
    openapi_extra=_events_body(),
)
async def send_events(stream_id: str, request: Request, principal: Writer, session: SessionDep) -> Response:
    rerun_is_safe()  # an event whose seq is not above the stream's last is answered, never learned again
    events = _events(await request.body(), request.headers.get("content-type"))
    # Nothing resolved beyond authentication (whose session this is): every dependency is a step of FastAPI's
    # solver on every batch, and the service's parts are the application's, read here as its dependencies would.
    state = request.app.state
    svc = _service(session, principal, state.context, state.streams, state.identity)
    # The model's work is CPU-bound: off the event loop, so other requests and WebSockets keep flowing.
    batch = await anyio.to_thread.run_sync(lambda: svc.ingest(stream_id=stream_id, events=events))
    # Already JSON-safe (its shape is EventsResponse): serialised directly, without a model per event.
    return Response(orjson.dumps(batch.as_dict()), media_type="application/json")


@router.get("/streams/{stream_id}/anomalies", summary="Flagged events with their values and scores, newest first")
@blocking
def list_anomalies(
    stream_id: str, principal: Reader, services: ServicesDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[AnomalyPublic]:
    items, next_cursor = services.of(principal).anomalies(stream_id=stream_id, limit=limit, cursor=cursor)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/streams/{stream_id}/drifts", summary="Drift detected in the stream's scores, newest first")
@blocking
def list_drifts(
    stream_id: str, principal: Reader, services: ServicesDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[DriftPublic]:
    items, next_cursor = services.of(principal).drifts(stream_id=stream_id, limit=limit, cursor=cursor)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/streams/{stream_id}/metrics", summary="Events per second, anomaly rates, drift events")
def stream_metrics(stream_id: str, principal: Reader, services: ServicesDep) -> StreamMetrics:
    return services.of(principal).metrics(stream_id=stream_id)


@ws_router.websocket("/streams/{stream_id}/ws")
async def stream_socket(
    websocket: WebSocket, stream_id: str, app: ContextDep, runtime: RuntimeDep, identity: IdentityDep
) -> None:
    """Events in, scores out. Authentication: the first frame (`{"type": "auth", "token"|"api_key": …}`) or the
    subprotocol `vigil.bearer.<credential>` next to `vigil.v1`; never the URL. Frames and close codes:
    docs/streams.md."""
    await StreamSocket(websocket=websocket, stream_id=stream_id, app=app, runtime=runtime, identity=identity).run()
