"""The ASGI application: /graphql (HTTP + graphql-transport-ws), /healthz, /readyz."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import orjson
import structlog
from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from tortoise import connections

from app.broker import Broker, RedisBroker, make_broker
from app.callbacks import callback_routes
from app.channels import alipay_config, wechatpay_config
from app.db import close_database, open_database
from app.logging import configure_logging
from app.qr import routes as qr_routes
from app.ratelimit import MemoryRateLimiter, RedisRateLimiter
from app.relay import OutboxRelay
from app.settings import Settings, load_settings
from app.sms import LoggingSmsSender
from app.sweeper import ExpirySweeper
from domain import config as domain_config
from domain.config import SmsSender
from resolvers.context import Context, authenticate, language, new_request_id
from schema.root import build_schema

log = structlog.get_logger("yikatong.app")

# Where RequestContextMiddleware leaves the request id for the context (cheaper than asking
# structlog for all its context variables).
REQUEST_ID_KEY = "yikatong.request_id"
_POST_OPERATIONS = OperationType.from_http("POST")
_JSON_HEADERS = [(b"content-type", b"application/json")]


class SubResponse(Response):
    """What a resolver may set on the response (headers, cookies, status, background), without
    building a body or default headers it will never send."""

    def __init__(self) -> None:
        self.status_code = None  # type: ignore[assignment]
        self.background = None
        self.body = b""
        self.raw_headers = []


class GraphQLApp(GraphQL[Context, None]):
    """Strawberry's ASGI view with our context and websocket authentication.

    A plain JSON POST (the request every client sends) takes a shorter path through the same
    steps as strawberry's view: parse the body, build the context, `schema.execute` with the
    operation types POST allows, the same 400s, `process_result`, one JSON response. Anything
    else (GET, GraphiQL, websockets, multipart, streaming `Accept`, batches, bodies strawberry
    rejects) goes through strawberry's view unchanged.
    """

    def __init__(self, *args: Any, state: AppState, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not _plain_json(scope):
            await super().__call__(scope, receive, send)
            return
        body = await _read_body(receive)
        data = _request_object(body)
        if data is None:
            await super().__call__(scope, _replay(body, receive), send)
            return
        request = Request(scope, receive)
        sub_response = SubResponse()
        context = await self.get_context(request, response=sub_response)
        try:
            result = await self.schema.execute(
                data.get("query"),
                variable_values=data.get("variables"),
                context_value=context,
                operation_name=data.get("operationName"),
                allowed_operation_types=_POST_OPERATIONS,
                operation_extensions=data.get("extensions"),
            )
        except CannotGetOperationTypeError as e:
            await _plain(400, e.as_http_error_reason(), scope, receive, send)
            return
        except InvalidOperationTypeError as e:
            await _plain(400, e.as_http_error_reason("POST"), scope, receive, send)
            return
        except MissingQueryError:
            await _plain(400, "No GraphQL query found in the request", scope, receive, send)
            return
        assert isinstance(result, ExecutionResult)
        response_data = await self.process_result(request, result)
        if result.errors:
            self._handle_errors(result.errors, response_data)
        payload = self.encode_json(response_data)
        headers = [(b"content-length", str(len(payload)).encode()), *_JSON_HEADERS]
        headers.extend(sub_response.raw_headers)
        await send(
            {
                "type": "http.response.start",
                "status": sub_response.status_code or 200,
                "headers": headers,
            }
        )
        await send({"type": "http.response.body", "body": payload})
        if sub_response.background is not None:
            await sub_response.background()

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        return SubResponse()

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        request_id = request.scope.get(REQUEST_ID_KEY) or new_request_id(
            request.headers.get("x-request-id")
        )
        ctx = Context(
            request=request,
            response=response if isinstance(response, Response) else None,
            broker=self.state.broker,
            request_id=request_id,
            lang=language(request.headers.get("accept-language")),
            max_page_size=self.state.settings.max_page_size,
        )
        if isinstance(request, Request):
            ip = request.client.host if request.client else None
            ctx.viewer, ctx.auth_error = await authenticate(
                request.headers.get("authorization"), ip, request_id
            )
        return ctx

    def parse_json(self, data: str | bytes) -> Any:
        """A body must be one JSON object; anything else is the client's error (400), not ours."""
        try:
            parsed = orjson.loads(data)
        except (orjson.JSONDecodeError, UnicodeDecodeError, TypeError) as exc:
            raise HTTPException(400, "Unable to parse request body as JSON") from exc
        if not isinstance(parsed, dict):
            raise HTTPException(400, "The request body must be a JSON object")
        return parsed

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    async def on_ws_connect(self, context: Context) -> Any:
        params = context.connection_params or {}
        authorization = params.get("authorization") or params.get("Authorization")
        if authorization is not None and not isinstance(authorization, str):
            raise ConnectionRejectionError({"code": "UNAUTHENTICATED"})
        viewer, error = await authenticate(authorization, context.ip, context.request_id)
        if authorization and viewer is None:
            raise ConnectionRejectionError({"code": "UNAUTHENTICATED", "message": error})
        context.viewer = viewer
        return None


def _plain_json(scope: Scope) -> bool:
    """A JSON body and no streaming transport asked for in `Accept`."""
    content_type = b""
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value
        elif name == b"accept" and (b"multipart" in value or b"event-stream" in value):
            return False
    return content_type.partition(b";")[0].strip() == b"application/json"


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _request_object(body: bytes) -> dict[str, Any] | None:
    """The request when it is one operation strawberry would accept as it is, else None."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if (
        type(data) is not dict
        or not isinstance(data.get("query"), str | None)
        or not isinstance(data.get("variables"), dict | None)
        or not isinstance(data.get("extensions"), dict | None)
    ):
        return None
    return data


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body read already, then the connection's own messages (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _plain(status: int, text: str, scope: Scope, receive: Receive, send: Send) -> None:
    # What strawberry's view answers for an HTTPException.
    await PlainTextResponse(text, status_code=status)(scope, receive, send)


class AppState:
    def __init__(self, settings: Settings, sms: SmsSender | None = None) -> None:
        self.settings = settings
        self.broker: Broker = make_broker(settings.redis_url, settings.redis_prefix)
        self.relay = OutboxRelay(self.broker)
        self.sweeper = ExpirySweeper()
        self.memory_limiter = MemoryRateLimiter()
        limiter: Any = self.memory_limiter
        if isinstance(self.broker, RedisBroker):
            limiter = RedisRateLimiter(
                self.broker.redis, self.memory_limiter, settings.redis_prefix
            )
        self.rate_limiter = limiter
        self.sms: SmsSender = sms or LoggingSmsSender(settings.production)

    def configure_domain(self) -> None:
        s = self.settings
        domain_config.configure(
            domain_config.DomainConfig(
                secret_key=s.secret_key,
                production=s.production,
                access_token_ttl=s.access_token_ttl,
                refresh_token_ttl=s.refresh_token_ttl,
                otp_ttl=s.otp_ttl,
                otp_max_attempts=s.otp_max_attempts,
                otp_per_phone_per_hour=s.otp_per_phone_per_hour,
                otp_per_ip_per_hour=s.otp_per_ip_per_hour,
                otp_verifications_per_ip_per_hour=s.otp_verifications_per_ip_per_hour,
                rate_limiter=self.rate_limiter,
                sms=self.sms,
                events=self.relay,
                wechatpay=wechatpay_config(s),
                alipay=alipay_config(s),
                top_up_ttl=s.top_up_ttl,
            )
        )


class RequestContextMiddleware:
    """Binds a request id to every log line, echoes it, and refuses oversized bodies."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        sent_id = headers.get(b"x-request-id")
        request_id = new_request_id(sent_id.decode("latin-1")) if sent_id else os.urandom(16).hex()
        scope[REQUEST_ID_KEY] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            await _too_large(scope, receive, send_with_id)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send_with_id)
        except _BodyTooLarge:
            await _too_large(scope, receive, send_with_id)


class _BodyTooLarge(Exception):
    pass


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    response = JSONResponse(
        {
            "errors": [
                {"message": "Request body too large", "extensions": {"code": "PAYLOAD_TOO_LARGE"}}
            ]
        },
        status_code=413,
    )
    await response(scope, receive, send)


def create_app(settings: Settings | None = None, sms: SmsSender | None = None) -> Starlette:
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_json)
    state = AppState(settings, sms)
    state.configure_domain()
    schema = build_schema(settings.max_query_depth, settings.max_query_tokens, settings.max_aliases)
    graphql = GraphQLApp(
        schema,
        state=state,
        graphql_ide="graphiql" if settings.env == "development" else None,
        allow_queries_via_get=False,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        connection_init_wait_timeout=timedelta(seconds=10),
        allowed_origins=settings.cors_origins,
    )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        checks: dict[str, str] = {}
        try:
            await connections.get("default").execute_query("SELECT 1")
            checks["database"] = "ok"
        except Exception as exc:  # reported, not raised
            checks["database"] = f"error: {type(exc).__name__}"
        checks["broker"] = "ok" if await state.broker.ping() else "error"
        ready = all(v == "ok" for v in checks.values())
        return Response(
            orjson.dumps(
                {
                    "status": "ready" if ready else "not ready",
                    "checks": checks,
                    "backends": settings.backend_label(),
                }
            ),
            status_code=200 if ready else 503,
            media_type="application/json",
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.configure_domain()
        await open_database(settings.database_url)
        await state.broker.start()
        state.relay.start()
        state.sweeper.start()
        log.info("yikatong started", env=settings.env, backends=settings.backend_label())
        try:
            yield
        finally:
            await state.sweeper.stop()
            await state.relay.stop()
            await state.broker.close()
            await close_database()

    middleware = [Middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)]
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["authorization", "content-type", "accept-language", "x-request-id"],
            )
        )
    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            *callback_routes,
            *qr_routes,
        ],
        middleware=middleware,
        lifespan=lifespan,
    )
    app.state.yikatong = state
    app.state.yikatong_schema = schema
    return app
