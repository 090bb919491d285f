"""What the API answers, for its OpenAPI document (GET /openapi.json).

The handlers build their JSON as dicts (the hot path does no validation of its own output);
these models describe the same shapes, so clients and `schemathesis` (tests/reliability/
test_api_schema.py) can check every response against them: status codes, content types
and bodies, errors included.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(BaseModel):
    """OpenAI's error shape."""

    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok", "error"]
    model: str
    active: int
    waiting: int
    versions: list[Any] | None = None
    last_reload: dict[str, Any] | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None


class TokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChatLogprobs(BaseModel):
    content: list[TokenLogprob] | None


class AssistantMessage(BaseModel):
    role: Literal["assistant"]
    content: str | None


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    logprobs: ChatLogprobs | None
    finish_reason: Literal["stop", "length", "content_filter"] | None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    system_fingerprint: str | None


class CompletionLogprobs(BaseModel):
    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float] | None] | None
    text_offset: list[int]


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: CompletionLogprobs | None
    finish_reason: Literal["stop", "length", "content_filter"] | None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage
    system_fingerprint: str | None


class FeedbackAck(BaseModel):
    status: Literal["ok"]
    id: int | str


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


Responses = dict[int | str, dict[str, Any]]
AUTH: Responses = {401: _error("no or wrong API key (when the server has one)")}
INVALID: Responses = {400: _error("an invalid request: the message names the field"), 413: _error("the request body is larger than the server allows")}
GENERATION: Responses = {
    **AUTH,
    **INVALID,
    404: _error("no such model"),
    429: _error("the server is busy (its queue is full); retry after Retry-After seconds"),
    500: _error("generation failed for this request; retry"),
    504: _error("the request took longer than the server's timeout"),
}
SSE = {
    "text/event-stream": {
        "schema": {
            "type": "object",
            "description": "one server-sent event: `data:` holds a chunk as JSON (chat.completion.chunk / text_completion; an error body if generation fails), the last one `[DONE]`",
            "required": ["data"],
            "properties": {"data": {"type": "string"}, "event": {"type": "string"}, "id": {"type": "string"}},
        }
    }
}


def generation(model: type[BaseModel]) -> Responses:
    """The responses of a generation route: the model's JSON, or an event stream with stream: true."""
    return {200: {"model": model, "description": "the reply (JSON), or with `stream: true` an event stream", "content": SSE}, **GENERATION}


HEALTH: Responses = {200: {"model": Health, "description": "serving"}, 503: {"model": Health, "description": "the engine is down"}}
METRICS: Responses = {
    200: {"description": "Prometheus metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
    **AUTH,
}
MODELS: Responses = {200: {"model": ModelList, "description": "the served model(s)"}, **AUTH}
FEEDBACK: Responses = {200: {"model": FeedbackAck, "description": "stored"}, **AUTH, **INVALID}
PAGE: Responses = {200: {"description": "the web chat page", "content": {"text/html": {"schema": {"type": "string"}}}}}
