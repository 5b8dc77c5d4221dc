"""The OpenAI-compatible API under /v1, authenticated with per-user API keys (Authorization: Bearer).

Every error, an unknown path, an oversized body or a crash included, uses OpenAI's shape,
{"error": {"message", "type", "param", "code"}}, so that OpenAI's client libraries raise their usual
exception classes.
"""
import base64
import functools
import json
import logging
import time
import uuid

import numpy as np
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from assistant.answering import GROUNDED_MODEL, GroundedAnswer
from assistant.generation import DEFAULT_MAX_TOKENS, PromptTooLong, chat_model, sampling_params
from assistant.middleware import DATABASE_UNAVAILABLE
from ingest.embedding import active_embedding_model, embed_texts, encoder
from assistant.selectors import catalog_model_kinds, chosen_language, get_api_key
from assistant.services import do_touch_api_key
from assistant.streaming import cluster_unavailable, iterate_in_thread, sse_event
from inference.selectors import llm_statuses

logger = logging.getLogger(__name__)
MAX_EMBEDDING_INPUTS = 2048
CHAT_ROLES = {"system", "user", "assistant"}
KIND_DESCRIPTIONS = {"llm": "an LLM", "embedding": "an embedding model", "whisper": "a speech-recognition model"}


class ApiError(Exception):
    def __init__(self, status, message, error_type="invalid_request_error", code=None, param=None):
        super().__init__(message)
        self.status, self.message, self.error_type, self.code, self.param = status, message, error_type, code, param

    def as_dict(self):
        return {"error": {"message": self.message, "type": self.error_type, "param": self.param, "code": self.code}}

    def response(self):
        return JsonResponse(self.as_dict(), status=self.status)


def api_endpoint(method):
    """An async /v1 view: the method checked, the key's user in request.api_user, ApiError as its response."""

    def decorate(view):
        @csrf_exempt  # authenticated by a bearer key, never by a cookie, so there is no cross-site request to forge
        @functools.wraps(view)
        async def endpoint(request, *args, **kwargs):
            try:
                if request.method != method:
                    raise ApiError(405, f"use {method} for {request.path}", code="method_not_allowed")
                request.api_user = await sync_to_async(authenticated_user)(request)
                return await view(request, *args, **kwargs)
            except ApiError as error:
                return error.response()
            except DATABASE_UNAVAILABLE:
                raise  # a 503, not a crash: assistant.middleware answers it in OpenAI's shape
            except Exception as error:  # Django would answer its HTML 500 page, which no OpenAI client can read
                logger.exception("%s %s failed", request.method, request.path)
                return ApiError(500, f"The server failed: {error}", error_type="server_error").response()

        return endpoint

    return decorate


def authenticated_user(request):
    scheme, _, raw_key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not raw_key.strip():
        raise ApiError(401, "Missing API key: send it as 'Authorization: Bearer KEY'.", code="invalid_api_key")
    api_key = get_api_key(raw_key.strip())
    if api_key is None:
        raise ApiError(401, "Incorrect or revoked API key.", code="invalid_api_key")
    do_touch_api_key(api_key)
    return api_key.user


@csrf_exempt
async def unknown_endpoint(request, path):
    return ApiError(404, f"There is no endpoint {request.method} {request.path}.", code="unknown_url").response()


def json_body(request):
    try:
        body = json.loads(request.body or b"null")
    except RequestDataTooBig:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raise ApiError(413, f"The request body is larger than {limit} bytes.", code="request_too_large") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(400, f"The body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object.")
    return body


@api_endpoint("GET")
async def list_models(request):
    """"kotatsu", the catalog LLMs the live nodes can run now (not those they cannot), and the embedding model."""
    created = int(time.time())
    runnable, embedding = await sync_to_async(
        lambda: ([status.name for status in llm_statuses() if status.can_run], active_embedding_model())
    )()
    names = [GROUNDED_MODEL, *runnable, embedding]
    data = [{"id": name, "object": "model", "created": created, "owned_by": "kotatsu"} for name in names]
    return JsonResponse({"object": "list", "data": data})


def chat_models(kinds):
    return [name for name, kind in kinds.items() if kind == "llm"]


def requested_model(body):
    model = body.get("model")
    if model is None or model == "":
        raise ApiError(400, "You must provide a model parameter.", code="missing_required_parameter", param="model")
    if not isinstance(model, str):
        raise ApiError(400, "model must be a string.", param="model")
    return model


def model_not_found(model):
    return ApiError(404, f"The model {model!r} does not exist.", code="model_not_found", param="model")


def model_of_another_kind(model, kind, wanted):
    return ApiError(400, f"{model} is {KIND_DESCRIPTIONS[kind]}; {wanted}.", code="model_not_supported", param="model")


def embedding_model(body):
    """The requested model, when it is the one the knowledge base embeds with (the only one /v1 embeds with)."""
    model, served = requested_model(body), active_embedding_model()
    if model == served:
        return model
    kind = "llm" if model == GROUNDED_MODEL else catalog_model_kinds().get(model)
    if kind is None:
        raise model_not_found(model)
    if kind == "embedding":
        raise model_of_another_kind(model, kind, f"this cluster embeds with {served!r} only")
    raise model_of_another_kind(model, kind, f"embeddings take {served!r}")


@api_endpoint("POST")
async def embeddings(request):
    body = json_body(request)
    model = await sync_to_async(embedding_model)(body)
    texts = embedding_inputs(body.get("input"))
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise ApiError(400, "encoding_format must be 'float' or 'base64'.", param="encoding_format")
    vectors, tokens = await sync_to_async(lambda: (embed_texts(texts, model), count_embedding_tokens(texts, model)))()
    data = [{"object": "embedding", "index": index, "embedding": encode_vector(vector, encoding)}
            for index, vector in enumerate(vectors)]
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return JsonResponse({"object": "list", "data": data, "model": model, "usage": usage})


def embedding_inputs(value):
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(text, str) for text in texts):
        raise ApiError(400, "input must be a non-empty string or a non-empty array of strings.", param="input")
    if len(texts) > MAX_EMBEDDING_INPUTS:
        raise ApiError(400, f"input holds {len(texts)} texts; at most {MAX_EMBEDDING_INPUTS} per request.", param="input")
    if any(not text.strip() for text in texts):
        raise ApiError(400, "input texts must not be empty.", param="input")
    return texts


def count_embedding_tokens(texts, model_name):
    """Tokens the embedding model reads, special tokens included and cut at its maximum length as it cuts."""
    model = encoder(model_name)
    encoded = model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)
    return sum(len(ids) for ids in encoded["input_ids"])


def encode_vector(vector, encoding):
    if encoding == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
    return [float(value) for value in vector]


@api_endpoint("POST")
async def chat_completions(request):
    chat = await sync_to_async(ChatRequest.from_body)(json_body(request), request.api_user)
    events = iterate_in_thread(chat.produce)
    try:
        completion = await anext(events)
    except PromptTooLong as error:
        raise ApiError(400, str(error), code="context_length_exceeded", param="messages") from None
    except Exception as error:
        if message := cluster_unavailable(error):  # nothing was generated: the client may ask again later
            raise ApiError(503, message, error_type="server_error", code="cluster_unavailable") from None
        raise
    if chat.stream:
        return StreamingHttpResponse(
            chat.sse(completion, events), content_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )
    try:
        # A grounded answer's deltas are its checked sentences: joined, the same text a stream sends.
        content = "".join([delta async for delta in events])
    except Exception as error:
        logger.exception("chat completion %s failed", chat.id)
        raise ApiError(500, f"Generation failed: {error}", error_type="server_error") from None
    return JsonResponse(chat.response(completion, content))


class ChatRequest:
    """A validated chat completion request: "kotatsu" answers from the knowledge base, an LLM name chats."""

    def __init__(self, model, messages, max_tokens, temperature, stream, include_usage, user):
        self.model, self.messages, self.max_tokens, self.user = model, messages, max_tokens, user
        self.temperature, self.stream, self.include_usage = temperature, stream, include_usage
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())

    @classmethod
    def from_body(cls, body, user):
        model = requested_model(body)
        if model != GROUNDED_MODEL:
            kinds = catalog_model_kinds()
            if model not in kinds:
                raise model_not_found(model)
            if kinds[model] != "llm":
                llms = ", ".join(chat_models(kinds))
                raise model_of_another_kind(model, kinds[model], f"chat completions take {GROUNDED_MODEL!r} or an LLM ({llms})")
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens")) or DEFAULT_MAX_TOKENS
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise ApiError(400, "max_tokens must be a positive integer.", param="max_tokens")
        temperature = body.get("temperature", 0.0)
        if not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
            raise ApiError(400, "temperature must be a number between 0 and 2.", param="temperature")
        stream_options = body.get("stream_options") or {}
        return cls(model, chat_messages(body.get("messages")), max_tokens, float(temperature),
                   bool(body.get("stream")), bool(stream_options.get("include_usage")), user)

    def produce(self, emit):
        if self.model == GROUNDED_MODEL:
            *history, question = self.messages
            history = [message for message in history if message["role"] != "system"]
            # The key's owner's interface language, else the request's (Accept-Language): see answer_language.
            language = chosen_language(self.user)
            completion = GroundedAnswer(question["content"], history, max_tokens=self.max_tokens,
                                        temperature=self.temperature, interface_language=language or None)
        else:
            completion = chat_model(self.model).stream_chat(self.messages, self.max_tokens,
                                                            sampling_params(self.temperature))
        emit(completion)
        for delta in completion:
            emit(delta)

    def base(self, object_type):
        return {"id": self.id, "object": object_type, "created": self.created, "model": self.model}

    def usage(self, completion):
        prompt, generated = completion.prompt_tokens, completion.completion_tokens
        return {"prompt_tokens": prompt, "completion_tokens": generated, "total_tokens": prompt + generated}

    def response(self, completion, content):
        choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": completion.finish_reason}
        response = {**self.base("chat.completion"), "choices": [choice], "usage": self.usage(completion)}
        if self.model == GROUNDED_MODEL:
            response["sources"] = completion.sources
        return response

    def chunk(self, delta, finish_reason=None):
        return {**self.base("chat.completion.chunk"), "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

    async def sse(self, completion, deltas):
        yield sse_event(self.chunk({"role": "assistant", "content": ""}))
        try:
            async for delta in deltas:
                yield sse_event(self.chunk({"content": delta}))
        except Exception as error:  # the stream has begun: the error can only be reported inside it
            logger.exception("chat completion %s failed", self.id)
            message = cluster_unavailable(error) or f"Generation failed: {error}"
            yield sse_event(ApiError(500, message, error_type="server_error").as_dict())
            return
        last = self.chunk({}, completion.finish_reason)
        if self.model == GROUNDED_MODEL:
            last["sources"] = completion.sources
        yield sse_event(last)
        if self.include_usage:
            yield sse_event({**self.base("chat.completion.chunk"), "choices": [], "usage": self.usage(completion)})
        yield sse_event("[DONE]")


def chat_messages(messages):
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "messages must be a non-empty array.", param="messages")
    parsed = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in CHAT_ROLES:
            raise ApiError(400, f"messages[{index}] needs a role among {sorted(CHAT_ROLES)}.", param=f"messages[{index}].role")
        parsed.append({"role": message["role"], "content": message_text(message.get("content"), index)})
    if parsed[-1]["role"] != "user":
        raise ApiError(400, "The last message must be the user's.", param="messages")
    return parsed


def message_text(content, index):
    """A message's content as text: a string, or an array of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(part, dict) and part.get("type") == "text" for part in content):
        return "".join(str(part.get("text", "")) for part in content)
    raise ApiError(400, f"messages[{index}].content must be a string or an array of text parts.",
                   param=f"messages[{index}].content")
