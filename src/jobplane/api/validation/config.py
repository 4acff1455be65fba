"""ConfigMap, Secret and ServiceAccount: upstream's defaulting, ``stringData`` folding,
validation and immutability (``pkg/apis/core/validation``: ValidateConfigMap,
ValidateSecret and their updates)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

from jobplane.api import errors
from jobplane.api.errors import FieldError, forbidden, invalid, required
from jobplane.api.validation.metadata import validate_object_meta, validate_object_meta_update
from jobplane.api.validation.names import is_dns1123_subdomain, max_len_error, regex_error

Obj = dict[str, Any]

MAX_SECRET_SIZE = 1024 * 1024  # core.MaxSecretSize, also the ConfigMap limit
_KEY_RE = re.compile(r"[-._a-zA-Z0-9]+")
_KEY_FMT = "[-._a-zA-Z0-9]+"
_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
_IMMUTABLE_SET = "field is immutable when `immutable` is set"

SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SECRET_TYPES_REQUIRED = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}
_JSON_KEYS = (".dockercfg", ".dockerconfigjson")


def is_config_map_key(key: str) -> list[str]:
    """``validation.IsConfigMapKey``: the key names a file in a volume, so no ``.``/``..``."""
    errs = []
    if len(key) > 253:
        errs.append(max_len_error(253))
    if not _KEY_RE.fullmatch(key):
        errs.append(regex_error(_KEY_MSG, _KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    if key == ".":
        errs.append("must not be '.'")
    elif key == "..":
        errs.append("must not be '..'")
    elif key.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def decoded_size(value: Any) -> int:
    try:
        return len(base64.b64decode(value or "", validate=True))
    except (binascii.Error, ValueError, TypeError):
        return 0


def check_base64(kind: str, values: Any) -> None:
    """A ``[]byte`` map the JSON decoder cannot read is a 400, as upstream's decoder answers."""
    if values is None:
        return
    prefix = f'{kind} in version "v1" cannot be handled as a {kind}: '
    if not isinstance(values, dict):
        raise errors.bad_request(prefix + "json: cannot unmarshal into Go value of type map[string][]uint8")
    for value in values.values():
        if value is None:
            continue
        if not isinstance(value, str):
            raise errors.bad_request(prefix + "json: cannot unmarshal into Go value of type []uint8")
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise errors.bad_request(prefix + "illegal base64 data at input byte 0") from None


# ---------------------------------------------------------------- ConfigMap


def validate_configmap(cm: Mapping[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(cm.get("metadata") or {}, True, is_dns1123_subdomain)
    data = cm.get("data") or {}
    binary = cm.get("binaryData") or {}
    size = 0
    for key, value in data.items():
        errs.extend(invalid(f"data[{key}]", key, m) for m in is_config_map_key(key))
        size += len(str(value or "").encode())
    for key, value in binary.items():
        errs.extend(invalid(f"binaryData[{key}]", key, m) for m in is_config_map_key(key))
        if key in data:
            errs.append(invalid(f"binaryData[{key}]", key, "duplicate of key present in data"))
        size += decoded_size(value)
    if size > MAX_SECRET_SIZE:
        errs.append(errors.too_long("", MAX_SECRET_SIZE))
    return errs


def _immutable_errors(new: Mapping[str, Any], old: Mapping[str, Any], fields: tuple[str, ...]) -> list[FieldError]:
    if old.get("immutable") is not True:
        return []
    errs = []
    if new.get("immutable") is not True:
        errs.append(forbidden("immutable", _IMMUTABLE_SET))
    for name in fields:
        if (new.get(name) or {}) != (old.get(name) or {}):
            errs.append(forbidden(name, _IMMUTABLE_SET))
    return errs


def validate_configmap_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {})
    errs.extend(_immutable_errors(new, old, ("data", "binaryData")))
    errs.extend(validate_configmap(new))
    return errs


# ---------------------------------------------------------------- Secret


def default_secret(secret: Obj) -> None:
    """``SetDefaults_Secret`` and the v1 conversion: ``stringData`` is folded into ``data``
    (its keys win) and never stored."""
    if not secret.get("type"):
        secret["type"] = "Opaque"
    string_data = secret.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = secret.get("data")
        data = dict(data) if isinstance(data, dict) else {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value if value is not None else "").encode()).decode()
        secret["data"] = data


def _json_error(raw: str) -> str:
    try:
        json.loads(base64.b64decode(raw or ""))
    except (ValueError, binascii.Error) as exc:
        return str(exc.args[0] if exc.args else exc)
    return ""


def validate_secret(secret: Mapping[str, Any]) -> list[FieldError]:
    md = secret.get("metadata") or {}
    errs = validate_object_meta(md, True, is_dns1123_subdomain)
    data = secret.get("data") or {}
    size = 0
    for key, value in data.items():
        errs.extend(invalid(f"data[{key}]", key, m) for m in is_config_map_key(key))
        size += decoded_size(value)
    if size > MAX_SECRET_SIZE:
        errs.append(errors.too_long("data", MAX_SECRET_SIZE))
    kind = secret.get("type") or ""
    if kind == "kubernetes.io/service-account-token":
        if not (md.get("annotations") or {}).get(SA_NAME_ANNOTATION):
            errs.append(required(f"metadata.annotations[{SA_NAME_ANNOTATION}]"))
    elif kind == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            errs.append(required("data[username]"))
            errs.append(required("data[password]"))
    for key in SECRET_TYPES_REQUIRED.get(kind, ()):
        if key not in data:
            errs.append(required(f"data[{key}]"))
        elif key in _JSON_KEYS:
            problem = _json_error(data[key])
            if problem:
                errs.append(invalid(f"data[{key}]", "<secret contents redacted>", problem))
    return errs


def validate_secret_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {})
    if (new.get("type") or "") != (old.get("type") or ""):
        errs.append(invalid("type", new.get("type") or "", "field is immutable"))
    errs.extend(_immutable_errors(new, old, ("data",)))
    errs.extend(validate_secret(new))
    return errs


# ---------------------------------------------------------------- ServiceAccount


def validate_serviceaccount(sa: Mapping[str, Any]) -> list[FieldError]:
    return validate_object_meta(sa.get("metadata") or {}, True, is_dns1123_subdomain)


def validate_serviceaccount_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {})
    errs.extend(validate_serviceaccount(new))
    return errs
