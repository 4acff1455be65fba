"""List continuation tokens: the snapshot revision and the last key returned, opaque to clients
and the same for every backend."""

from __future__ import annotations

import base64

import orjson


def encode_continue(rev: int, last_key: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"rev": rev, "key": last_key})).decode()


def decode_continue(token: str) -> tuple[int, str]:
    from jobplane.api.errors import bad_request

    try:
        data = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rev"]), str(data["key"])
    except Exception as exc:  # noqa: BLE001 - any garbage is the client's error
        raise bad_request("continue key is not valid") from exc
