"""The one error type: a ``metav1.Status`` carried from where it is raised to the HTTP layer.

Messages follow upstream's shapes byte for byte, because kubectl prints them
verbatim (``jobs.batch "pi" not found``, ``Job.batch "x" is invalid: ...``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

# FieldError types, as apimachinery's field.ErrorType renders them.
REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
FORBIDDEN = "FieldValueForbidden"
TOO_LONG = "FieldValueTooLong"
TOO_MANY = "FieldValueTooMany"
NOT_FOUND = "FieldValueNotFound"
INTERNAL = "InternalError"

_TYPE_TEXT = {
    REQUIRED: "Required value",
    INVALID: "Invalid value",
    NOT_SUPPORTED: "Unsupported value",
    DUPLICATE: "Duplicate value",
    FORBIDDEN: "Forbidden",
    TOO_LONG: "Too long",
    TOO_MANY: "Too many",
    NOT_FOUND: "Not found",
    INTERNAL: "Internal error",
}

# Types whose rendering never shows the value.
_OMIT_VALUE = {REQUIRED, FORBIDDEN, TOO_LONG, INTERNAL}

_OMIT = object()


def go_quote(value: Any) -> str:
    """Render a value the way Go's ``%v``/``%q`` does in field errors."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return orjson.dumps(value).decode()
    if isinstance(value, int | float):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, dict):
        inner = " ".join(f"{k}:{v}" for k, v in sorted(value.items()))
        return f"map[{inner}]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(str(v) for v in value) + "]"
    return str(value)


@dataclass
class FieldError:
    """One ``field.Error``: a type, a dotted field path, a bad value and a detail."""

    type: str
    field: str
    value: Any = _OMIT
    detail: str = ""

    def body(self) -> str:
        """The part after ``<field>: ``, e.g. ``Invalid value: -1: must be ...``."""
        text = _TYPE_TEXT[self.type]
        if self.type not in _OMIT_VALUE and self.value is not _OMIT:
            text += ": " + (self.value if isinstance(self.value, RawValue) else go_quote(self.value))
        if self.detail:
            text += ": " + self.detail
        return text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"

    def cause(self) -> dict[str, str]:
        return {"reason": self.type, "message": self.body(), "field": self.field}


class RawValue(str):
    """A value already rendered (e.g. a Go ``%#v`` struct dump); printed as is."""


def required(path: str, detail: str = "") -> FieldError:
    return FieldError(REQUIRED, path, detail=detail)


def invalid(path: str, value: Any, detail: str = "") -> FieldError:
    return FieldError(INVALID, path, value, detail)


def not_supported(path: str, value: Any, supported: list[str]) -> FieldError:
    detail = "supported values: " + ", ".join(go_quote(s) for s in supported) if supported else ""
    return FieldError(NOT_SUPPORTED, path, value, detail)


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError(FORBIDDEN, path, detail=detail)


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError(DUPLICATE, path, value)


def too_long(path: str, max_len: int) -> FieldError:
    return FieldError(TOO_LONG, path, detail=f"may not be longer than {max_len}")


def too_many(path: str, actual: int, max_items: int) -> FieldError:
    return FieldError(TOO_MANY, path, RawValue(str(actual)), f"must have at most {max_items} items")


@dataclass
class StatusError(Exception):
    """An API error; ``to_status()`` is the ``metav1.Status`` body the server sends."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            status["details"] = self.details
        return status

    @classmethod
    def from_status(cls, status: dict[str, Any]) -> StatusError:
        return cls(
            code=int(status.get("code") or 500),
            reason=status.get("reason") or "",
            message=status.get("message") or "",
            details=status.get("details"),
        )

    def __str__(self) -> str:
        return self.message


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> StatusError:
    """``jobs.batch "pi" not found`` / ``pods "x" not found``."""
    return StatusError(
        404,
        "NotFound",
        f'{_qualified(resource, group)} "{name}" not found',
        {"name": name, "group": group, "kind": resource},
    )


def already_exists(resource: str, group: str, name: str) -> StatusError:
    return StatusError(
        409,
        "AlreadyExists",
        f'{_qualified(resource, group)} "{name}" already exists',
        {"name": name, "group": group, "kind": resource},
    )


def conflict(resource: str, group: str, name: str, detail: str) -> StatusError:
    """409 Conflict, e.g. a stale resourceVersion on update."""
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {detail}',
        {"name": name, "group": group, "kind": resource},
    )


STALE_OBJECT = "the object has been modified; please apply your changes to the latest version and try again"


def invalid_object(kind: str, group: str, name: str, errors: list[FieldError]) -> StatusError:
    """422 Invalid as apimachinery's NewInvalid: every error a cause; the message says each
    distinct one once (ErrorList.ToAggregate), one inline, several in brackets."""
    qualified = f"{kind}.{group}" if group else kind
    texts = list(dict.fromkeys(str(e) for e in errors))
    agg = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    return StatusError(
        422,
        "Invalid",
        f'{qualified} "{name}" is invalid: {agg}',
        {"name": name, "group": group, "kind": kind, "causes": [e.cause() for e in errors]},
    )


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def gone(message: str) -> StatusError:
    return StatusError(410, "Expired", message)


def unauthorized() -> StatusError:
    return StatusError(401, "Unauthorized", "Unauthorized")


def forbidden_request(message: str) -> StatusError:
    return StatusError(403, "Forbidden", message)


def method_not_supported(resource: str, group: str, verb: str) -> StatusError:
    return StatusError(
        405,
        "MethodNotAllowed",
        f"{verb} is not supported on resources of kind {_qualified(resource, group)!r}",
        {"group": group, "kind": resource},
    )


def unsupported_media_type(content_type: str) -> StatusError:
    return StatusError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {content_type}")


def internal_error(message: str) -> StatusError:
    return StatusError(500, "InternalError", f"Internal error occurred: {message}",
                       {"causes": [{"message": message}]})


def resource_not_found_path() -> StatusError:
    """An unknown path (or subresource): upstream's answer carries an empty ``details``, and
    kubectl relies on it being present (``kubectl debug`` dereferences it)."""
    return StatusError(404, "NotFound", "the server could not find the requested resource", {})


def request_entity_too_large(message: str) -> StatusError:
    """413 as upstream's ``NewRequestEntityTooLargeError``."""
    return StatusError(413, "RequestEntityTooLarge", f"Request entity too large: {message}")


def too_large_resource_version(requested: int, current: int, retry_after_seconds: int) -> StatusError:
    """504 as upstream's ``NewTooLargeResourceVersionError`` (a Timeout with a
    ResourceVersionTooLarge cause, and Retry-After when there is a delay to give)."""
    details: dict[str, Any] = {"causes": [{"reason": "ResourceVersionTooLarge",
                                           "message": "Too large resource version"}]}
    if retry_after_seconds > 0:
        details["retryAfterSeconds"] = retry_after_seconds
    return StatusError(
        504, "Timeout", f"Timeout: Too large resource version: {requested}, current: {current}", details,
        {"Retry-After": str(retry_after_seconds)} if retry_after_seconds > 0 else {})
