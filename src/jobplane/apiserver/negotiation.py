"""Content negotiation: which answer shape a request wants (``Accept``) and how to decode
its body (``Content-Type``).

Pure functions over header strings so the handlers stay short and the rules are testable
without a server. kubectl's exact header values are listed in kubectl-wire.md §1.1.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson
import yaml

from jobplane.api import bodyparse, errors
from jobplane.api.patch import APPLY_PATCH as APPLY_PATCH_YAML
from jobplane.api.patch import JSON_PATCH, MERGE_PATCH, PATCH_TYPES, STRATEGIC_MERGE_PATCH

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
YAML_TYPES = (YAML, "application/x-yaml", "text/yaml", APPLY_PATCH_YAML)
# Bodies larger than this are parsed in a worker thread, so the event loop keeps serving:
# orjson reads about a megabyte a millisecond, the YAML and protobuf readers far less.
_INLINE_PARSE_MAX = {JSON: 1024 * 1024}
_INLINE_PARSE_DEFAULT = 32 * 1024


def parse_inline(content_type: str | None, size: int) -> bool:
    """Whether a body of this type and size is cheap enough to parse on the event loop."""
    media = media_type(content_type)
    if media in ("", *PATCH_TYPES) and media not in YAML_TYPES:
        media = JSON
    return size <= _INLINE_PARSE_MAX.get(media, _INLINE_PARSE_DEFAULT)

TABLE_CONTENT_TYPE = "application/json;as=Table;v=v1;g=meta.k8s.io"
AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

# Response modes.
MODE_JSON = "json"
MODE_TABLE = "table"
MODE_AGGREGATED = "aggregated"


def _media_params(part: str) -> tuple[str, dict[str, str]]:
    pieces = [p.strip() for p in part.split(";")]
    params: dict[str, str] = {}
    for p in pieces[1:]:
        k, sep, v = p.partition("=")
        if sep:
            params[k.strip().lower()] = v.strip().strip('"')
    return pieces[0].lower(), params


@lru_cache(maxsize=256)
def accept_mode(accept: str | None) -> str:
    """The first acceptable answer kind in ``Accept`` order: a server-side Table, an
    aggregated discovery list, or plain JSON (also for protobuf/``*/*``: JSON answers to a
    protobuf Accept are fine for kubectl)."""
    if not accept:
        return MODE_JSON
    for part in accept.split(","):
        media, params = _media_params(part)
        if media != JSON:
            continue
        as_ = params.get("as")
        if as_ is None:
            return MODE_JSON
        if as_ == "Table" and params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
            return MODE_TABLE
        if as_ == "APIGroupDiscoveryList" and params.get("g") == "apidiscovery.k8s.io" and params.get("v") == "v2":
            return MODE_AGGREGATED
    return MODE_JSON


@lru_cache(maxsize=64)
def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def decode_body(content_type: str | None, data: bytes) -> Any:
    """Decode a request body (JSON, YAML or Kubernetes protobuf); 415 for other types,
    400 for a malformed body."""
    media = media_type(content_type)
    if media in ("", JSON, *PATCH_TYPES):
        try:
            return orjson.loads(data) if data else None
        except orjson.JSONDecodeError as exc:
            raise errors.bad_request(f"the object provided is unrecognized ({exc})") from None
    if media in YAML_TYPES:
        try:
            return bodyparse.load_yaml(data)
        except (yaml.YAMLError, ValueError) as exc:
            raise errors.bad_request(f"the object provided is unrecognized ({exc})") from None
    if media == PROTOBUF:
        from jobplane.api import protobuf

        try:
            return protobuf.decode(data)
        except errors.StatusError:
            raise
        except Exception as exc:  # noqa: BLE001 - any decoder failure is the client's bad body
            raise errors.bad_request(f"the object provided is unrecognized ({exc})") from None
    raise errors.unsupported_media_type(content_type or "")


def patch_type(content_type: str | None) -> str:
    """The patch type of a PATCH request; 415 ``the body of the request was in an unknown
    format`` with upstream's list of accepted types otherwise."""
    media = media_type(content_type)
    if media in PATCH_TYPES or media == APPLY_PATCH_YAML:
        return media
    raise errors.StatusError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{JSON_PATCH}, {MERGE_PATCH}, {STRATEGIC_MERGE_PATCH}, {APPLY_PATCH_YAML}",
    )


def truthy(value: str | None) -> bool:
    """Query booleans as apiserver parses them (``true``/``1``)."""
    return value is not None and value.lower() in ("true", "1")
