"""`chatforge serve`: an OpenAI-compatible API and a web chat page in front of the engine.

    chatforge serve --model runs/dpo/model --port 8000 [--api-key KEY]
    chatforge serve --registry registry --log-conversations [--ab A=production:0.9 B=candidate:0.1]

    from openai import OpenAI
    client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="KEY")
    client.chat.completions.create(model="dpo", messages=[{"role": "user", "content": "Hi"}])

Routes: `POST /v1/chat/completions` and `POST /v1/completions` (OpenAI's request and
response schemas, streaming as server-sent events with `data: [DONE]`), `GET /v1/models`,
`POST /v1/feedback` (a rating of a reply, from the web page or any client), `GET /health`,
`GET /metrics` (Prometheus) and the web chat page at `/`.

What protects the server and its users:
- limits on the body size (refused before it is read whole), the number and size of
  messages, max_tokens, n and the context length: a 400 (413 for the body) in OpenAI's
  error shape, naming the field;
- a bounded queue: when `--max-batch` sequences run and `--queue` more wait, a request
  gets 429 with Retry-After instead of an unbounded wait; a per-request timeout; a client
  that disconnects mid-stream has its sequence cancelled at once (its slot is freed);
- `--api-key` / `--api-keys-file`: every route but /health and the page needs
  `Authorization: Bearer KEY`; keys are compared in constant time and never logged;
- the safety layer (serve/safety.py): harmful or prompt-injection requests, and harmful
  replies, get a polite refusal (finish reason "content_filter"), counted in /metrics;
- ratings (`POST /v1/feedback`) go to the feedback store (`--store`, chatforge/feedback/
  store.py), and with `--log-conversations` (opt-in) every turn too, with its model,
  latency and the mean logprob and entropy of its tokens; the store anonymizes every text
  (the cleaning step's PII detector) before it is written, and a rating is on disk
  before the client hears "ok".

With `--registry` the server answers with the registry's production version and switches
to a newly promoted (or rolled back) one without failing a request; with `--ab` each user
is routed to a variant's version (serve/routing.py). Replies name the version that wrote
them (`model: "v3"`), turns in the store record it and the variant, and /metrics has
per-version series (`chatforge_model_*`, labelled by model version and variant).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from sse_starlette.sse import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatforge.engine import Engine, Sampling, Seq, Token
from chatforge.serve import openapi
from chatforge.serve.config import ServeConfig
from chatforge.serve.routing import Backend, RecentTurns, Router
from chatforge.serve.safety import REFUSAL, Guard
from chatforge.serve.worker import Done
from chatforge.ui import QUIET, UI

STATIC = Path(__file__).parent / "static"

# -- request schemas (strict: `false` is not an int, "1" is not a number) ---------------------


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _unicode(cls, data: Any) -> Any:
        """JSON may escape a lone surrogate ("\\ud800"), which is not text: no tokenizer or store takes it."""
        stack = [data]
        while stack:  # not recursive: the body may nest deeply
            v = stack.pop()
            if isinstance(v, str) and not v.isascii():
                try:
                    v.encode("utf-8")  # (in C: a lone surrogate is the only str that fails)
                except UnicodeEncodeError:
                    raise ValueError("text holds an unpaired surrogate, which is not valid Unicode") from None
            if isinstance(v, dict):
                stack.extend(v)
                stack.extend(v.values())
            elif isinstance(v, list):
                stack.extend(v)
        return data


def _whole(v: Any) -> Any:
    """JSON has one number type: 2.0 is the integer 2 (JSON Schema agrees); 2.5 and true are not."""
    return int(v) if isinstance(v, float) and v.is_integer() and abs(v) < 2**63 else v


Int = Annotated[int, BeforeValidator(_whole)]
"""A strict int that also takes a whole JSON number written as 2.0."""


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ChatMessage(_Strict):
    role: Literal["system", "user", "assistant", "developer"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content)
        return self.content or ""


class StreamOptions(_Strict):
    include_usage: bool = False


class _Sampled(_Strict):
    model: str = ""
    temperature: Annotated[float, Field(ge=0, le=2)] = 1.0
    top_p: Annotated[float, Field(gt=0, le=1)] = 1.0
    top_k: Annotated[Int, Field(ge=0)] = 0  # an extension, as vLLM has
    repetition_penalty: Annotated[float, Field(gt=0, le=10)] = 1.0  # an extension, as vLLM has
    max_tokens: Annotated[Int, Field(ge=1)] | None = None
    stop: str | list[str] | None = None
    seed: Annotated[Int, Field(ge=-(2**63), lt=2**64)] | None = None  # what torch's generator takes
    n: Annotated[Int, Field(ge=1)] = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    metadata: dict[str, str] | None = Field(default=None, max_length=16)  # as OpenAI's; `intent` is stored with the turn


class ChatRequest(_Sampled):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: Annotated[Int, Field(ge=1)] | None = None
    logprobs: bool = False
    top_logprobs: Annotated[Int, Field(ge=0, le=20)] | None = None


class CompletionRequest(_Sampled):
    prompt: str | list[str]
    logprobs: Annotated[Int, Field(ge=0, le=20)] | None = None
    max_tokens: Annotated[Int, Field(ge=1)] | None = 16  # OpenAI's default for completions


class FeedbackRequest(_Strict):
    completion_id: str = Field(max_length=200)
    rating: Literal["up", "down"] | Annotated[Int, Field(ge=1, le=5)]
    comment: str | None = Field(default=None, max_length=5000)
    corrected: str | None = Field(default=None, max_length=20000)
    messages: list[ChatMessage] | None = None
    reply: str | None = Field(default=None, max_length=50000)
    user: str | None = Field(default=None, max_length=200)


# -- errors in OpenAI's shape --------------------------------------------------------------------


class APIError(Exception):
    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code, self.headers = status, message, type, param, code, headers


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def _short(text: str, limit: int = 200) -> str:
    """Error messages never echo a huge input."""
    return text if len(text) <= limit else text[:limit] + "..."


# -- the gate: body-size limit and request metrics, as plain ASGI (no buffering of responses) ----------


class Gate:
    """Refuse a request body over `limit` bytes with 413 before reading it whole (by its
    Content-Length when it has one, else as soon as the bytes received pass the limit),
    and count every request by route and status code."""

    def __init__(self, app: ASGIApp, limit: int, metrics: Metrics) -> None:
        self.app, self.limit, self.metrics = app, limit, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500
        if scope["method"] in ("POST", "PUT", "PATCH"):
            declared = dict(scope.get("headers") or []).get(b"content-length", b"")
            if declared.isdigit() and int(declared) > self.limit:
                await self._refuse(scope, send, t0)
                return
            chunks, size = [], 0
            while True:  # read the body ourselves, up to the limit
                msg = await receive()
                if msg["type"] != "http.request":
                    break
                size += len(msg.get("body", b""))
                if size > self.limit:
                    await self._refuse(scope, send, t0)
                    return
                chunks.append(msg.get("body", b""))
                if not msg.get("more_body"):
                    break
            body, replayed, channel = b"".join(chunks), False, receive

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await channel()  # then the real channel: a disconnect shows up here

            receive = replay

        async def sending(msg: Message) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "other")
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - t0)

    async def _refuse(self, scope: Scope, send: Send, t0: float) -> None:
        body = json.dumps(error_body(f"request body larger than {self.limit} bytes", "invalid_request_error", code="request_too_large")).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        self.metrics.requests.labels("other", "413").inc()
        self.metrics.errors.labels("413").inc()


# -- metrics ------------------------------------------------------------------------------------------


class Metrics:
    """Prometheus metrics of one server (its own registry)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("chatforge_requests", "HTTP requests by route and status code", ["route", "code"], registry=r)
        self.errors = Counter("chatforge_errors", "error responses by status code", ["code"], registry=r)
        self.tokens = Counter("chatforge_tokens", "tokens read (prompt) and generated (completion)", ["kind"], registry=r)
        self.latency = Histogram("chatforge_request_latency_seconds", "request latency", ["route"], registry=r, buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120))
        self.ttft = Histogram("chatforge_time_to_first_token_seconds", "time to the first generated token", registry=r, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10))
        self.queue = Gauge("chatforge_queue_depth", "sequences waiting for a slot", registry=r)
        self.active = Gauge("chatforge_active_sequences", "sequences being generated", registry=r)
        self.blocked = Counter("chatforge_safety_blocked", "requests and replies refused by the safety layer", ["stage", "reason"], registry=r)
        self.feedback = Counter("chatforge_feedback", "ratings received", ["rating"], registry=r)
        self.rejected = Counter("chatforge_rejected", "requests refused because the queue was full", registry=r)
        self.generation_errors = Counter("chatforge_generation_errors", "sequences ended by a failed generation step (the log has the traceback)", registry=r)
        # Per model version and A/B variant. The version label takes at most MAX_VERSIONS
        # values (a server promoted many times files the rest under "other"); the variant
        # label takes the --ab names or "none": the series stay bounded.
        per = ["model", "variant"]
        self.model_requests = Counter("chatforge_model_requests", "completed generation requests by model version, A/B variant and finish reason", [*per, "finish"], registry=r)
        self.model_latency = Histogram("chatforge_model_request_latency_seconds", "generation request latency by model version and A/B variant", per, registry=r, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120))
        self.model_tokens = Counter("chatforge_model_tokens", "tokens read (prompt) and generated (completion) by model version and A/B variant", [*per, "kind"], registry=r)
        self.model_feedback = Counter("chatforge_model_feedback", "ratings by the version and variant that wrote the rated reply (unknown: a reply this server did not write recently)", [*per, "rating"], registry=r)
        self._versions: set[str] = set()

    MAX_VERSIONS = 20

    def per(self, version: str | None, variant: str | None) -> tuple[str, str]:
        """The (model, variant) label values, bounded."""
        v = version or "unknown"
        if v not in self._versions:
            if len(self._versions) >= self.MAX_VERSIONS:
                v = "other"
            else:
                self._versions.add(v)
        return v, variant or "none"


# -- the app ----------------------------------------------------------------------------------------------


@dataclass
class _Choice:
    seq: Seq | None
    events: asyncio.Queue[Token | Done] | None


@dataclass
class Call:
    """One request's model: the backend (a version) answering it, and its A/B variant."""

    backend: Backend
    variant: str | None

    @property
    def version(self) -> str:
        return self.backend.version

    @property
    def tok(self) -> Any:
        return self.backend.engine.tok

    def labels(self, srv: Server) -> tuple[str, str]:
        return srv.metrics.per(self.version, self.variant)


class Server:
    """The state behind the routes: the served models (router), limits, metrics, logs."""

    def __init__(self, cfg: ServeConfig, engine: Engine | None, model_name: str, ui: UI = QUIET) -> None:
        self.cfg = cfg
        self.metrics = Metrics()
        self.guard = Guard(cfg.safety)
        self.keys = _load_keys(cfg)
        self.created = int(time.time())
        from chatforge.feedback.store import FeedbackStore

        self.store = FeedbackStore.open(cfg.store)
        self.router = Router(cfg, self.store, engine=engine, name=model_name, on_step=self._gauges, ui=ui)
        self.recent = RecentTurns()

    @property
    def engine(self) -> Engine:
        """The engine new requests get (the first route's, under an A/B test)."""
        return self.router.default.engine

    @property
    def name(self) -> str:
        return self.router.default.version

    def _gauges(self, _: Engine) -> None:
        backends = self.router.backends
        self.metrics.queue.set(sum(b.engine.waiting for b in backends))
        self.metrics.active.set(sum(b.engine.active for b in backends))

    async def call(self, req: _Sampled) -> Call:
        """Check the request's `model` and pick the backend that answers it (release with `done`)."""
        names = self.router.names()
        if req.model and req.model not in names:
            raise APIError(404, f"model {_short(req.model, 80)!r} does not exist; this server serves {', '.join(sorted(names))}", param="model", code="model_not_found")
        backend, variant = await self.router.pick(req.user)
        return Call(backend, variant)

    def done(self, call: Call) -> None:
        self.router.release(call.backend)

    # -- auth and admission ---------------------------------------------------------------------
    def authorize(self, request: Request) -> None:
        if not self.keys:
            return
        header = request.headers.get("authorization", "")
        given = header[7:].strip() if header.lower().startswith("bearer ") else ""
        ok = False
        for key in self.keys:  # every key compared, in constant time
            ok |= hmac.compare_digest(given.encode(), key.encode())
        if not ok:
            raise APIError(401, "missing or invalid API key (send Authorization: Bearer KEY)", type="invalid_request_error", code="invalid_api_key")

    def shed(self) -> None:
        """429 at once, before the body is validated or a prompt tokenized, when every backend's
        batch and queue are full: under overload a refusal must cost almost nothing, or the
        refusals take the CPU (and the GIL) that generation needs."""
        limit = self.cfg.max_batch + self.cfg.queue
        backends = self.router.backends
        if backends and all(b.engine.waiting + b.engine.active >= limit for b in backends):
            self.metrics.rejected.inc()
            raise APIError(429, "the server is busy: too many requests are waiting; retry shortly", type="rate_limit_error", code="rate_limit_exceeded", headers={"Retry-After": "1"})

    def admit(self, call: Call, n: int) -> None:
        """429 when the running batch and the queue are full."""
        e = call.backend.engine
        if e.waiting + e.active + n > self.cfg.max_batch + self.cfg.queue:
            self.metrics.rejected.inc()
            raise APIError(429, "the server is busy: too many requests are waiting; retry shortly", type="rate_limit_error", code="rate_limit_exceeded", headers={"Retry-After": "1"})

    # -- requests into sampling -------------------------------------------------------------------
    def sampling(self, req: _Sampled, max_tokens: int | None, logprobs: int | None, index: int) -> Sampling:
        lim = self.cfg.limits
        mt = max_tokens if max_tokens is not None else lim.max_tokens
        if mt > lim.max_tokens:
            raise APIError(400, f"max_tokens is {mt}; this server allows at most {lim.max_tokens}", param="max_tokens", code="invalid_value")
        seed = None if req.seed is None else req.seed + index
        if seed is not None and seed >= 2**64:  # choice `index` of a seed near the top wraps (torch takes 64 bits)
            seed -= 2**64
        return Sampling(temperature=req.temperature, top_k=req.top_k, top_p=req.top_p, max_tokens=mt, seed=seed, repetition_penalty=req.repetition_penalty, logprobs=logprobs, summary=self.cfg.log_conversations)

    def check_common(self, req: _Sampled) -> list[str]:
        """The request's stop strings, after the limits on n and stop."""
        lim = self.cfg.limits
        if req.n > lim.max_n:
            raise APIError(400, f"n is {req.n}; this server allows at most {lim.max_n}", param="n", code="invalid_value")
        stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
        if len(stop) > lim.max_stop:
            raise APIError(400, f"at most {lim.max_stop} stop sequences", param="stop", code="invalid_value")
        if any(not s for s in stop):
            raise APIError(400, "stop sequences may not be empty", param="stop", code="invalid_value")
        return stop

    def check_context(self, call: Call, prompt: list[int], s: Sampling) -> None:
        block = call.backend.engine.model.cfg.block_size
        if len(prompt) + s.max_tokens > block:
            raise APIError(
                400,
                f"this model's context is {block} tokens; the request has {len(prompt)} prompt tokens and asks for {s.max_tokens} more",
                param="messages",
                code="context_length_exceeded",
            )

    # -- the feedback store -------------------------------------------------------------------------
    async def log_turn(self, call: Call, kind: str, rid: str, messages: list[dict[str, str]], replies: list[str], tokens: list[list[Token]], finishes: list[str], req: Any, seconds: float, prompt_tokens: int) -> None:
        """Store each choice of a finished request as a turn (with --log-conversations)."""
        if not self.cfg.log_conversations:
            return
        from chatforge.feedback.store import Turn

        intent = (req.metadata or {}).get("intent") if isinstance(req, ChatRequest) else None
        sampling = {"temperature": req.temperature, "top_p": req.top_p, "top_k": req.top_k, "repetition_penalty": req.repetition_penalty, "seed": req.seed}
        for i, (reply, got, finish) in enumerate(zip(replies, tokens, finishes, strict=True)):
            lps = [t.logprob for t in got if t.logprob is not None]
            ents = [t.entropy for t in got if t.entropy is not None]
            turn = Turn(
                id=rid if i == 0 else f"{rid}.{i}",
                model=call.version,
                variant=call.variant,
                experiment=self.router.experiment if call.variant else None,
                messages=messages,
                reply=reply,
                kind=kind,
                user=req.user,
                sampling=sampling,
                latency=round(seconds, 4),
                prompt_tokens=prompt_tokens,
                completion_tokens=len(got),
                logprob_mean=sum(lps) / len(lps) if lps else None,
                entropy_mean=sum(ents) / len(ents) if ents else None,
                finish_reason=finish,
                intent=intent,
            )
            await asyncio.to_thread(self.store.add_turn, turn)


def _load_keys(cfg: ServeConfig) -> list[str]:
    keys = [cfg.api_key] if cfg.api_key else []
    if cfg.api_keys_file:
        from chatforge.errors import UserError

        try:
            lines = Path(cfg.api_keys_file).read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise UserError(f"{cfg.api_keys_file}: cannot read the keys file: {e.strerror or e}") from None
        keys += [k.strip() for k in lines if k.strip() and not k.strip().startswith("#")]
        if not keys:
            raise UserError(f"{cfg.api_keys_file}: holds no key")
    return keys


def create_app(cfg: ServeConfig, engine: Engine | None = None, model_name: str = "", ui: UI = QUIET) -> FastAPI:
    """The FastAPI app serving `engine` as `model_name`, or (engine None) what `cfg` names: the
    model dir, or the registry's versions, watched for changes. Engine threads start with the app."""
    srv = Server(cfg, engine, model_name, ui)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        srv.router.start()
        watcher = asyncio.create_task(srv.router.watch()) if cfg.registry else None
        yield
        if watcher is not None:
            watcher.cancel()
        await srv.router.stop()

    app = FastAPI(title="chatforge", version="1", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.server = srv

    @app.exception_handler(APIError)
    async def api_error(request: Request, e: APIError) -> JSONResponse:
        srv.metrics.errors.labels(str(e.status)).inc()
        return JSONResponse(error_body(e.message, e.type, e.param, e.code), status_code=e.status, headers=e.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        srv.metrics.errors.labels("400").inc()
        first = e.errors()[0] if e.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(x) for x in first.get("loc", ()) if x != "body"]
        param = _short(".".join(loc)) or None  # a key of the body may be long too
        return JSONResponse(error_body(_short(f"{param or 'body'}: {first.get('msg', 'invalid')}"), "invalid_request_error", param, "invalid_value"), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        srv.metrics.errors.labels(str(e.status_code)).inc()
        return JSONResponse(error_body(_short(str(e.detail)), "invalid_request_error", None, "not_found" if e.status_code == 404 else None), status_code=e.status_code, headers=e.headers)  # a 405's Allow

    # The key is checked as a dependency, which FastAPI runs before it validates the body: a
    # caller without the key learns nothing about the request schema (401 before any 400).
    key = [Depends(srv.authorize)]
    generate = [Depends(srv.authorize), Depends(srv.shed)]

    @app.get("/health", responses=openapi.HEALTH)
    async def health() -> JSONResponse:
        backends = srv.router.backends
        ok = all(b.worker.alive for b in backends)
        body: dict[str, Any] = {"status": "ok" if ok else "error", "model": srv.name, "active": sum(b.engine.active for b in backends), "waiting": sum(b.engine.waiting for b in backends)}
        if cfg.registry:
            body["versions"] = srv.router.versions()
            last = srv.router.reloads[-1:]
            if last:
                body["last_reload"] = {"at": last[0].at, "versions": last[0].versions, "error": last[0].error or None}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", response_class=Response, responses=openapi.METRICS, dependencies=key)
    async def metrics(request: Request) -> Response:
        return Response(generate_latest(srv.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models", responses=openapi.MODELS, dependencies=key)
    async def models(request: Request) -> dict[str, Any]:
        return {"object": "list", "data": [{"id": b.version, "object": "model", "created": srv.created, "owned_by": "chatforge"} for b in srv.router.backends]}

    @app.post("/v1/chat/completions", responses=openapi.generation(openapi.ChatCompletion), dependencies=generate)
    async def chat_completions(request: Request, req: ChatRequest) -> Any:
        stop = srv.check_common(req)
        call = await srv.call(req)
        return await _held(srv, call, _chat(srv, call, request, req, stop))

    async def _chat(srv: Server, call: Call, request: Request, req: ChatRequest, stop: list[str]) -> Any:
        lim = cfg.limits
        engine = call.backend.engine
        if not req.messages:
            raise APIError(400, "messages: give at least one message", param="messages", code="invalid_value")
        if len(req.messages) > lim.max_messages:
            raise APIError(400, f"{len(req.messages)} messages; this server allows at most {lim.max_messages}", param="messages", code="invalid_value")
        messages = []
        for i, m in enumerate(req.messages):
            text = m.text()
            if len(text) > lim.max_message_chars:
                raise APIError(400, f"messages.{i}.content has {len(text)} characters; at most {lim.max_message_chars}", param=f"messages.{i}.content", code="invalid_value")
            messages.append({"role": "system" if m.role == "developer" else m.role, "content": text})
        if messages[-1]["role"] == "assistant":
            raise APIError(400, "the last message must not be the assistant's: there would be nothing to answer", param="messages", code="invalid_value")
        max_tokens = req.max_completion_tokens or req.max_tokens
        top = (req.top_logprobs or 0) if req.logprobs else None
        block = engine.model.cfg.block_size
        # Without max_tokens a reply may take the room the conversation leaves (as OpenAI's
        # API does), up to the server's limit; the conversation keeps at least half the
        # context, as the engine's chat prompts do.
        room = max_tokens if max_tokens is not None else min(lim.max_tokens, block // 2)
        try:
            prompt = engine.prompt_ids(messages, room=room)
        except ValueError:
            raise APIError(400, f"this model's context is {block} tokens: the last message and max_tokens {room} do not fit", param="messages", code="context_length_exceeded") from None
        if max_tokens is None:
            max_tokens = max(1, min(lim.max_tokens, block - len(prompt)))
        samplings = [srv.sampling(req, max_tokens, top, i) for i in range(req.n)]
        srv.check_context(call, prompt, samplings[0])
        blocked = srv.guard.check_input(messages)
        if blocked:
            srv.metrics.blocked.labels("input", blocked).inc()
        return await _respond(srv, call, request, "chat", prompt, samplings, stop, blocked, req, messages)

    @app.post("/v1/completions", responses=openapi.generation(openapi.Completion), dependencies=generate)
    async def completions(request: Request, req: CompletionRequest) -> Any:
        stop = srv.check_common(req)
        call = await srv.call(req)
        return await _held(srv, call, _completions(srv, call, request, req, stop))

    async def _completions(srv: Server, call: Call, request: Request, req: CompletionRequest, stop: list[str]) -> Any:
        prompts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
        if len(prompts) != 1:
            raise APIError(400, "prompt: give one prompt per request (a list of one is fine)", param="prompt", code="invalid_value")
        text = prompts[0]
        if len(text) > cfg.limits.max_message_chars:
            raise APIError(400, f"prompt has {len(text)} characters; at most {cfg.limits.max_message_chars}", param="prompt", code="invalid_value")
        samplings = [srv.sampling(req, req.max_tokens, req.logprobs, i) for i in range(req.n)]
        prompt = [call.tok.bos_id, *call.tok.encode(text)]
        srv.check_context(call, prompt, samplings[0])
        blocked = srv.guard.check_prompt(text)
        if blocked:
            srv.metrics.blocked.labels("input", blocked).inc()
        return await _respond(srv, call, request, "text", prompt, samplings, stop, blocked, req, [{"role": "user", "content": text}])

    @app.post("/v1/feedback", responses=openapi.FEEDBACK, dependencies=key)
    async def feedback(request: Request, req: FeedbackRequest) -> dict[str, Any]:
        from chatforge.feedback.store import Rating

        # The version that wrote the rated reply: remembered for recent replies; else, on a
        # server of one model dir, that model; else the store takes the stored turn's.
        version, variant = srv.recent.get(req.completion_id) or (None if cfg.registry else srv.name, None)
        rating = Rating(
            turn_id=req.completion_id,
            thumb={"up": 1, "down": -1}.get(req.rating) if isinstance(req.rating, str) else None,
            score=req.rating if isinstance(req.rating, int) else None,
            comment=req.comment,
            corrected=req.corrected,
            messages=[{"role": m.role, "content": m.text()} for m in req.messages] if req.messages else None,
            reply=req.reply,
            model=version,  # None: the store takes the rated turn's, when it has the turn
            user=req.user,
        )
        rating_id = await asyncio.to_thread(srv.store.add_rating, rating)  # on disk before the reply
        srv.metrics.feedback.labels(str(req.rating)).inc()
        srv.metrics.model_feedback.labels(*srv.metrics.per(version, variant), str(req.rating)).inc()
        return {"status": "ok", "id": rating_id}

    if STATIC.is_dir() and (STATIC / "index.html").is_file():

        @app.get("/", response_class=FileResponse, responses=openapi.PAGE)
        async def page() -> FileResponse:
            return FileResponse(STATIC / "index.html")

        app.mount("/static", StaticFiles(directory=STATIC), name="static")

    app.add_middleware(Gate, limit=cfg.limits.max_body_bytes, metrics=srv.metrics)
    return app


# -- generation and the two response shapes ---------------------------------------------------------


async def _held(srv: Server, call: Call, work: Any) -> Any:
    """Run a request's handler holding its backend; a stream gives it back when the stream ends."""
    try:
        response = await work
    except BaseException:
        srv.done(call)
        raise
    if not isinstance(response, EventSourceResponse):
        srv.done(call)
    return response


def _logprob_entry(tok: Any, t: Token) -> dict[str, Any]:
    def one(i: int, lp: float) -> dict[str, Any]:
        raw = tok.decode_bytes([i])
        return {"token": raw.decode("utf-8", errors="replace"), "logprob": lp, "bytes": list(raw)}

    entry = one(t.id, t.logprob if t.logprob is not None else 0.0)
    entry["top_logprobs"] = [one(i, lp) for i, lp in (t.top or [])]
    return entry


class _Text:
    """Turns a choice's tokens into text: whole characters, cut before any stop string."""

    def __init__(self, tok: Any, stop: list[str]) -> None:
        self.dec = tok.stream_decoder(skip_special=True)
        self.stop = stop
        self.keep = max((len(s) - 1 for s in stop), default=0)
        self.held = ""
        self.text = ""
        self.stopped = False

    def push(self, token: int) -> str:
        """New text to show after `token` ("" while a stop string may be starting)."""
        return self._out(self.dec.push(token), final=False)

    def flush(self) -> str:
        return self._out(self.dec.flush(), final=True)

    def _out(self, piece: str, final: bool) -> str:
        if self.stopped:
            return ""
        self.held += piece
        cut = min((i for i in (self.held.find(s) for s in self.stop) if i >= 0), default=-1)
        if cut >= 0:
            out, self.held, self.stopped = self.held[:cut], "", True
        elif final or len(self.held) <= self.keep:
            out, self.held = (self.held, "") if final else ("", self.held)
        else:
            out, self.held = self.held[: len(self.held) - self.keep], self.held[len(self.held) - self.keep :]
        self.text += out
        return out


async def _run_choice(srv: Server, call: Call, request: Request, prompt: list[int], s: Sampling, stop: list[str], deadline: float) -> AsyncIterator[tuple[str, Token | None, str | None]]:
    """(new text, token, finish reason) as one choice is generated; cancels its sequence if
    the client goes away, a stop string appears, or the deadline passes."""
    loop = asyncio.get_running_loop()
    worker = call.backend.worker
    seq, events = worker.submit(prompt, s, loop)
    text = _Text(call.tok, stop)
    labels = call.labels(srv)
    t0 = time.perf_counter()
    first = True
    finish: str | None = None
    try:
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise APIError(504, f"the request took longer than {srv.cfg.limits.timeout:g} s and was cancelled", type="timeout_error", code="timeout")
            try:
                ev = await asyncio.wait_for(events.get(), timeout=min(remaining, 1.0))
            except TimeoutError:
                if await request.is_disconnected():
                    return
                continue
            if isinstance(ev, Done):
                if ev.finish_reason == "error":
                    srv.metrics.generation_errors.inc()
                    raise APIError(500, "generation failed for this request (the server's log says why); please retry", type="server_error", code="generation_failed")
                finish = "length" if ev.finish_reason == "length" else "stop"
                yield text.flush(), None, finish
                return
            if first:
                srv.metrics.ttft.observe(time.perf_counter() - t0)
                first = False
            srv.metrics.tokens.labels("completion").inc()
            srv.metrics.model_tokens.labels(*labels, "completion").inc()
            piece = text.push(ev.id)
            if text.stopped:
                yield piece, ev, "stop"
                return
            yield piece, ev, None
    finally:
        if not seq.done:
            worker.cancel(seq)  # a client gone, a stop string, a timeout: free the slot now


async def _respond(srv: Server, call: Call, request: Request, kind: str, prompt: list[int], samplings: list[Sampling], stop: list[str], blocked: str | None, req: Any, messages: list[dict[str, str]]) -> Any:
    rid = ("chatcmpl-" if kind == "chat" else "cmpl-") + uuid.uuid4().hex[:24]
    created = int(time.time())
    srv.metrics.tokens.labels("prompt").inc(len(prompt))
    srv.metrics.model_tokens.labels(*call.labels(srv), "prompt").inc(len(prompt))
    if not blocked:
        srv.admit(call, len(samplings))
    deadline = time.perf_counter() + srv.cfg.limits.timeout
    t0 = time.perf_counter()
    if req.stream:
        return EventSourceResponse(_released(srv, call, _stream(srv, call, request, kind, rid, created, prompt, samplings, stop, blocked, req, messages, deadline, t0)), ping=15)
    texts: list[str] = []
    tokens: list[list[Token]] = []
    finishes: list[str] = []
    if blocked:
        texts, tokens, finishes = [REFUSAL] * len(samplings), [[] for _ in samplings], ["content_filter"] * len(samplings)
    else:

        async def one(s: Sampling) -> tuple[str, list[Token], str]:
            got: list[Token] = []
            pieces: list[str] = []
            finish = "stop"
            async for piece, token, reason in _run_choice(srv, call, request, prompt, s, stop, deadline):
                pieces.append(piece)
                if token is not None:
                    got.append(token)
                if reason is not None:
                    finish = reason
            return "".join(pieces), got, finish

        try:
            async with asyncio.TaskGroup() as group:  # one choice failing (a timeout) cancels the others
                jobs = [group.create_task(one(s)) for s in samplings]
        except* APIError as eg:
            raise eg.exceptions[0] from None
        results = [j.result() for j in jobs]
        for text, got, finish in results:
            if srv.guard.check_output(text):
                srv.metrics.blocked.labels("output", "toxic").inc()
                text, finish = REFUSAL, "content_filter"
            texts.append(text)
            tokens.append(got)
            finishes.append(finish)
    completion = sum(len(t) for t in tokens)
    usage = {"prompt_tokens": len(prompt), "completion_tokens": completion, "total_tokens": len(prompt) + completion}
    _finished(srv, call, rid, finishes, time.perf_counter() - t0)
    await srv.log_turn(call, kind, rid, messages, texts, tokens, finishes, req, time.perf_counter() - t0, len(prompt))
    choices = []
    for i, (text, got, finish) in enumerate(zip(texts, tokens, finishes, strict=True)):
        want_logprobs = samplings[i].logprobs is not None
        if kind == "chat":
            lp = {"content": [_logprob_entry(call.tok, t) for t in got]} if want_logprobs else None
            choices.append({"index": i, "message": {"role": "assistant", "content": text}, "logprobs": lp, "finish_reason": finish})
        else:
            lp = _completion_logprobs(call.tok, got) if want_logprobs else None
            choices.append({"index": i, "text": text, "logprobs": lp, "finish_reason": finish})
    obj = "chat.completion" if kind == "chat" else "text_completion"
    return {"id": rid, "object": obj, "created": created, "model": call.version, "choices": choices, "usage": usage, "system_fingerprint": None}


def _finished(srv: Server, call: Call, rid: str, finishes: list[str], seconds: float) -> None:
    """A request answered: per-version metrics, and its id remembered for the rating that may follow."""
    labels = call.labels(srv)
    srv.metrics.model_requests.labels(*labels, finishes[0] if finishes else "none").inc()
    srv.metrics.model_latency.labels(*labels).observe(seconds)
    srv.recent.add(rid, call.version, call.variant)


async def _released(srv: Server, call: Call, events: AsyncIterator[str]) -> AsyncIterator[str]:
    """A stream's events; its backend is given back when the stream ends or is dropped."""
    try:
        async for event in events:
            yield event
    finally:
        srv.done(call)


def _completion_logprobs(tok: Any, got: list[Token]) -> dict[str, Any]:
    tokens = [tok.decode_bytes([t.id]).decode("utf-8", errors="replace") for t in got]
    offsets, at = [], 0
    for tk in tokens:
        offsets.append(at)
        at += len(tk)
    top = [{tok.decode_bytes([i]).decode("utf-8", errors="replace"): lp for i, lp in (t.top or [])} for t in got]
    return {"tokens": tokens, "token_logprobs": [t.logprob for t in got], "top_logprobs": top, "text_offset": offsets}


async def _stream(srv: Server, call: Call, request: Request, kind: str, rid: str, created: int, prompt: list[int], samplings: list[Sampling], stop: list[str], blocked: str | None, req: Any, messages: list[dict[str, str]], deadline: float, t0: float) -> AsyncIterator[str]:
    obj = "chat.completion.chunk" if kind == "chat" else "text_completion"

    def chunk(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> str:
        body: dict[str, Any] = {"id": rid, "object": obj, "created": created, "model": call.version, "choices": choices, "system_fingerprint": None}
        if usage is not None:
            body["usage"] = usage
        return json.dumps(body, ensure_ascii=False)

    def choice(i: int, text: str | None, finish: str | None, token: Token | None = None, role: bool = False) -> dict[str, Any]:
        if kind == "chat":
            delta: dict[str, Any] = {}
            if role:
                delta["role"] = "assistant"
            if text is not None:
                delta["content"] = text
            lp = {"content": [_logprob_entry(call.tok, token)]} if token is not None and samplings[i].logprobs is not None else None
            return {"index": i, "delta": delta, "logprobs": lp, "finish_reason": finish}
        lp2 = _completion_logprobs(call.tok, [token]) if token is not None and samplings[i].logprobs is not None else None
        return {"index": i, "text": text or "", "logprobs": lp2, "finish_reason": finish}

    include_usage = bool(req.stream_options and req.stream_options.include_usage)
    completion = 0
    replies = [""] * len(samplings)
    got: list[list[Token]] = [[] for _ in samplings]
    finishes = ["content_filter" if blocked else "stop"] * len(samplings)
    if kind == "chat":
        for i in range(len(samplings)):
            yield chunk([choice(i, "", None, role=True)])
    if blocked:
        for i in range(len(samplings)):
            yield chunk([choice(i, REFUSAL, None)])
            yield chunk([choice(i, None if kind == "chat" else "", "content_filter")])
            replies[i] = REFUSAL
    else:
        # The choices' events, merged as they come.
        merged: asyncio.Queue[tuple[int, str, Token | None, str | None] | tuple[int, BaseException]] = asyncio.Queue()

        async def pump(i: int, s: Sampling) -> None:
            try:
                async for piece, token, reason in _run_choice(srv, call, request, prompt, s, stop, deadline):
                    await merged.put((i, piece, token, reason))
            except BaseException as e:  # an APIError (timeout) or a cancellation
                await merged.put((i, e))
                raise

        tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(samplings)]
        open_choices = len(samplings)
        try:
            while open_choices:
                item = await merged.get()
                if len(item) == 2:
                    err = item[1]
                    if isinstance(err, APIError):
                        srv.metrics.errors.labels(str(err.status)).inc()
                        yield json.dumps(error_body(err.message, err.type, err.param, err.code))
                    return
                i, piece, token, reason = item  # type: ignore[misc]
                if token is not None:
                    completion += 1
                    got[i].append(token)
                replies[i] += piece
                if reason is not None and srv.guard.check_output(replies[i]):
                    srv.metrics.blocked.labels("output", "toxic").inc()
                    reason = "content_filter"
                if piece or token is not None:
                    yield chunk([choice(i, piece, None, token)])
                if reason is not None:
                    yield chunk([choice(i, None if kind == "chat" else "", reason)])
                    finishes[i] = reason
                    open_choices -= 1
        finally:
            for t in tasks:
                t.cancel()
    usage = {"prompt_tokens": len(prompt), "completion_tokens": completion, "total_tokens": len(prompt) + completion}
    if include_usage:
        yield chunk([], usage)
    _finished(srv, call, rid, finishes, time.perf_counter() - t0)
    await srv.log_turn(call, kind, rid, messages, replies, got, finishes, req, time.perf_counter() - t0, len(prompt))
    yield "[DONE]"


# -- the command -------------------------------------------------------------------------------------


# Seconds an idle keep-alive connection stays open. Longer than the 5 s for which httpx (and
# so the `openai` client) keeps idle connections for reuse: with equal timeouts a client may
# send a request on a connection at the moment the server closes it, and the request fails
# before reaching the server (seen once in ~1,000 requests at 4x overload).
KEEP_ALIVE_S = 15


def main(cfg: ServeConfig, ui: Any = None) -> None:
    """Run `chatforge serve` until interrupted."""
    import uvicorn

    ui = ui or QUIET
    app = create_app(cfg, ui=ui)
    router: Router = app.state.server.router
    auth = "with an API key" if (cfg.api_key or cfg.api_keys_file) else "without an API key"
    if cfg.host not in ("127.0.0.1", "localhost", "::1") and not (cfg.api_key or cfg.api_keys_file):
        ui.warn(f"listening on {cfg.host} without an API key: anyone who can reach this port can use the model")
    what = ", ".join(f"{b.version} ({b.engine.model.num_params() / 1e6:.1f}M parameters, {str(b.engine.dtype).removeprefix('torch.')})" for b in router.backends)
    if cfg.ab:
        what = "A/B test " + repr(cfg.ab_experiment) + ": " + ", ".join(f"{r}={b.version} ({router.split[r] / sum(router.split.values()):.0%})" for r, b in router.serving.items())
        ui.note("requests without a `user` id get a variant drawn for that request alone (not stored as an assignment)")
    if cfg.registry:
        what += f" from {cfg.registry} (reloading on promote/rollback)"
    ui.note(f"serving {what} at http://{cfg.host}:{cfg.port}/ {auth}; OpenAI API at /v1")
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning", access_log=False, timeout_keep_alive=KEEP_ALIVE_S)
