"""Every error code the server answers with, as typed errors: each class
holds its status, its code and, where one sentence fits every case, its
message. docs/errors.md lists the codes; tests/test_docs.py holds the two
lists together.

Code anywhere in the package raises these; each surface shapes them its own
way: REST as `{"error", "code", "details"?}` (api/rest_errors.py), /v1 in
OpenAI's shape (api/openai_shapes.py), the WebSocket as error frames
(api/ws.py). No code string is written outside this module
(tests/test_layout.py).
"""

from __future__ import annotations

from http import HTTPStatus

from chatserver.outage import RETRY_AFTER


class ApiError(Exception):
    """The base of the catalogue; `message` given to the constructor replaces the class's."""

    status = 500
    code = "internal_error"
    message = "internal server error"

    def __init__(self, message: str | None = None, *, details: list | None = None,
                 headers: dict | None = None):
        if message is not None:
            self.message = message
        super().__init__(self.message)
        self.details = details
        self.headers = headers


# What the HTTP layer answers by status alone: aiohttp's own refusals, and
# the errors below whose code says no more than their status.

class BadRequest(ApiError):
    status, code, message = 400, "bad_request", "bad request"


class Unauthorized(ApiError):
    status, code, message = 401, "unauthorized", "invalid or expired token"


class Forbidden(ApiError):
    status, code, message = 403, "forbidden", "forbidden"


class KeyCannotManageKeys(Forbidden):
    message = "an API key cannot be used here: use an access token"


class AdminsOnly(Forbidden):
    message = "only an administrator may do this"


class OwnAccount(Forbidden):
    message = "an administrator cannot take their own role away or disable themselves"


class NotFound(ApiError):
    status, code, message = 404, "not_found", "not found"

    def __init__(self, what: str | None = None) -> None:
        super().__init__(None if what is None else f"{what} not found")


class OidcNotConfigured(NotFound):
    code, message = "oidc_not_configured", "single sign-on is not configured on this server"

    def __init__(self) -> None:
        ApiError.__init__(self)


class MethodNotAllowed(ApiError):
    status, code, message = 405, "method_not_allowed", "method not allowed"


class PayloadTooLarge(ApiError):
    status, code, message = 413, "payload_too_large", "the request body is too large"


class UnsupportedMediaType(ApiError):
    status, code, message = 415, "unsupported_media_type", "unsupported media type"


class ValidationFailed(ApiError):
    status, code, message = 422, "validation_error", "invalid input"


class FolderExists(ApiError):
    status, code, message = 409, "folder_exists", "you have a folder of that name already"


class PresetExists(ApiError):
    status, code, message = 409, "preset_exists", "you have a preset of that name already"


class EmptyChat(ApiError):
    status, code, message = 409, "empty_chat", "the chat has no messages to share yet"


class MessageUnfinished(ApiError):
    status, code, message = 409, "message_unfinished", "the answer is still being written"


class TooManyKeys(ApiError):
    status, code = 409, "too_many_keys"

    def __init__(self, cap: int) -> None:
        super().__init__(f"a user may hold at most {cap} API keys: delete one first")


class TooManyExports(ApiError):
    status, code, message = 429, "too_many_exports", "too many exports at once; try again shortly"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class RateLimited(ApiError):
    status, code, message = 429, "rate_limited", "too many requests; try again later"

    def __init__(self, retry_after: int) -> None:
        super().__init__(headers={"Retry-After": str(retry_after)})


class QuotaExceeded(ApiError):
    status, code = 429, "quota_exceeded"

    def __init__(self, what: str, retry_after: int) -> None:
        super().__init__(f"your {what} quota for today (UTC) is used up", headers={"Retry-After": str(retry_after)})


class InternalError(ApiError):
    pass


class ServiceUnavailable(ApiError):
    status, code = 503, "service_unavailable"
    message = "a server this service needs is unreachable; try again shortly"

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": str(RETRY_AFTER)})


class HttpError(ApiError):
    """A refusal of the HTTP layer itself with a status none above has: every answer has a code."""

    code = "error"

    def __init__(self, status: int, message: str | None = None) -> None:
        self.status = status
        super().__init__(message or HTTPStatus(status).phrase.lower())


_BY_STATUS: dict[int, type[ApiError]] = {cls.status: cls for cls in (
    BadRequest, Unauthorized, Forbidden, MethodNotAllowed, PayloadTooLarge, UnsupportedMediaType,
    ValidationFailed, InternalError)}


def of_status(status: int, message: str | None = None) -> ApiError:
    """What the HTTP layer's own refusal of `status` answers; `message` is its reason."""
    if status == NotFound.status:
        return NotFound()
    kind = _BY_STATUS.get(status)
    return HttpError(status, message) if kind is None else kind(message)


# 400

class UploadInterrupted(ApiError):
    status, code, message = 400, "upload_interrupted", "the upload was interrupted"


class InvalidOidcState(ApiError):
    status, code = 400, "invalid_oidc_state"
    message = "this sign-in is unknown, was used already or has expired: start again"


class OidcFailed(ApiError):
    status, code, message = 400, "oidc_failed", "the identity provider's answer could not be verified"


# 401

class InvalidCredentials(ApiError):
    status, code, message = 401, "invalid_credentials", "wrong email or password"


# 403

class RegistrationClosed(ApiError):
    status, code = 403, "registration_closed"
    message = "registration is closed; ask the server's operator for an account"


class InvalidCallbackToken(ApiError):
    status, code, message = 403, "invalid_token", "invalid callback token for this message"


class CorsForbidden(ApiError):
    status, code, message = 403, "cors_forbidden", "origin not allowed"


# 404

class NoPreview(NotFound):
    message = "this file has no preview (yet)"


# 409

class EmailTaken(ApiError):
    status, code, message = 409, "email_taken", "an account with this email already exists"


class MessageFinished(ApiError):
    status, code, message = 409, "message_finished", "the message is already finished"


# 422

class InvalidJson(ApiError):
    status, code, message = 422, "invalid_json", "request body must be a JSON object"


class InvalidInput(ApiError):
    """Text PostgreSQL cannot store (NUL, unpaired surrogates), or a form in an unreadable encoding."""
    status, code, message = 422, "invalid_input", "input the server cannot read or store"


class InvalidCursor(ApiError):
    status, code, message = 422, "invalid_cursor", "cursor: not a cursor this server gave out"


class UnknownModel(ApiError):
    status, code, message = 422, "unknown_model", "model: unknown model"

    def __init__(self, model: str) -> None:
        super().__init__(f"model: unknown model {model!r} (see GET /api/models)",
                         details=[{"loc": ["model"], "msg": f"unknown model {model}"}])


class UnknownTools(ApiError):
    status, code, message = 422, "unknown_tools", "tools: unknown tool ids"

    def __init__(self, unknown: list[str]) -> None:
        super().__init__(f"{self.message}: " + ", ".join(unknown) + " (see GET /api/tools)",
                         details=[{"loc": ["tools"], "msg": f"unknown tool {tool}"} for tool in unknown])


class UnknownFiles(ApiError):
    status, code, message = 422, "unknown_files", "file_ids: not your files"

    def __init__(self, missing: list[str], field: str = "file_ids") -> None:
        super().__init__(f"{field}: not your files: " + ", ".join(missing),
                         details=[{"loc": [field], "msg": f"unknown file {m}"} for m in missing])


class UnknownFolder(ApiError):
    status, code, message = 422, "unknown_folder", "folder_id: no such folder of yours"

    def __init__(self, folder_id: object) -> None:
        super().__init__(f"folder_id: no folder {folder_id} of yours",
                         details=[{"loc": ["folder_id"], "msg": f"unknown folder {folder_id}"}])


class UnknownPreset(ApiError):
    status, code, message = 422, "unknown_preset", "preset_id: no such preset of yours"

    def __init__(self, preset_id: object) -> None:
        super().__init__(f"preset_id: no preset {preset_id} of yours",
                         details=[{"loc": ["preset_id"], "msg": f"unknown preset {preset_id}"}])


class UnknownKnowledge(ApiError):
    status, code, message = 422, "unknown_knowledge", "knowledge: ids that are not files of yours"

    def __init__(self, unknown: list[str]) -> None:
        super().__init__(f"{self.message}: " + ", ".join(unknown[:10]),
                         details=[{"loc": ["knowledge"], "msg": f"unknown file {i}"} for i in unknown])


class NotAnAnswer(ApiError):
    status, code, message = 422, "not_an_answer", "only an assistant message can be regenerated"


class NotAQuestion(ApiError):
    status, code, message = 422, "not_a_question", "only a user message can be edited"


class InvalidMultipart(ApiError):
    status, code, message = 422, "invalid_multipart", "malformed multipart body"


class TooManyFiles(ApiError):
    status, code, message = 422, "too_many_files", "send one file per upload"


class UnreadableImport(ApiError):
    status, code, message = 422, "unreadable_import", "file: not a file that can be imported"


class InvalidLastEventId(ApiError):
    status, code = 422, "invalid_last_event_id"
    message = "Last-Event-ID: must be a character count this stream gave out"


class SeqTooFar(ApiError):
    status, code, message = 422, "seq_too_far", "seq is too far ahead of the missing events"


# 503

class NotReady(ApiError):
    status, code, message = 503, "not_ready", "a server this service needs is not reachable"


class Unhealthy(ApiError):
    status, code, message = 503, "unhealthy", "an embedded server stopped and could not be started again"


# /v1 only: OpenAI's codes, which its clients know. `param` names the
# request field at fault.

class OpenAIError(ApiError):
    param: str | None = None
    error_type: str | None = None  # OpenAI's `type` where it is not the one of the status

    def __init__(self, message: str | None = None, *, param: str | None = None) -> None:
        super().__init__(message)
        if param is not None:
            self.param = param


class InvalidApiKey(OpenAIError):
    status, code = 401, "invalid_api_key"
    message = "You didn't provide an API key: send 'Authorization: Bearer <key>'."


class ModelNotFound(OpenAIError):
    status, code, message, param = 404, "model_not_found", "The model does not exist", "model"

    def __init__(self, model: str) -> None:
        super().__init__(f"The model '{model}' does not exist")


class RequestTooLarge(OpenAIError):
    status, code, message = 413, "request_too_large", "the request body is too large"


class InvalidValue(OpenAIError):
    status, code, message = 400, "invalid_value", "the request is not valid"


class StringAboveMaxLength(OpenAIError):
    status, code, message, param = 400, "string_above_max_length", "a message is too long", "messages"


class InvalidImageUrl(OpenAIError):
    status, code, param = 400, "invalid_image_url", "messages"
    message = "an image_url part must be a data URL of an image"


class UnsupportedContent(OpenAIError):
    status, code, param = 400, "unsupported_content", "messages"
    message = "only text content parts are supported"


class UnsupportedRole(OpenAIError):
    status, code, message, param = 400, "unsupported_role", "this role is not supported", "messages"


class InsufficientQuota(OpenAIError):
    status, code, error_type = 429, "insufficient_quota", "insufficient_quota"

    def __init__(self, what: str, retry_after: int) -> None:
        super().__init__(f"You exceeded your {what} quota for today (UTC).")
        self.headers = {"Retry-After": str(retry_after)}


class ResponseNotFound(OpenAIError):
    status, code = 404, "response_not_found"
    message = "No response with this id: it never existed, was deleted, or was created with store false"


class AnswerFailed(OpenAIError):
    status, code, message = 502, "answer_failed", "the answer was failed"


class AnswerCancelled(OpenAIError):
    status, code, message = 502, "answer_cancelled", "the answer was cancelled"


def catalogue() -> list[type[ApiError]]:
    """Every class above, the base first."""
    found, pending = [], [ApiError]
    while pending:
        kind = pending.pop(0)
        found.append(kind)
        pending.extend(kind.__subclasses__())
    return found
