"""``/openapi/v3``: the index with ``?hash=`` URLs and the upstream documents served
verbatim (kubectl-wire.md §1.3). Hashes and the index are computed once."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import orjson

IMMUTABLE_HEADERS = {
    "Cache-Control": "public, immutable",
    "Expires": "Thu, 31 Dec 2099 23:59:59 GMT",
}
PREFIX = "/openapi/v3"


class OpenApiV3:
    def __init__(self, documents: Mapping[str, bytes]) -> None:
        self._docs = dict(documents)
        self._hashes = {k: hashlib.sha512(v).hexdigest().upper() for k, v in self._docs.items()}
        # kube-openapi's handler3 writes a Go map: its keys in order
        self.index = orjson.dumps({"paths": {
            k: {"serverRelativeURL": f"{PREFIX}/{k}?hash={h}"} for k, h in sorted(self._hashes.items())}})

    def document(self, group_version: str, requested_hash: str | None) -> tuple[bytes, bool] | None:
        """(document bytes, immutable?) for ``api/v1`` / ``apis/batch/v1``; None if unknown.
        Only a request naming the current hash may be cached forever."""
        doc = self._docs.get(group_version)
        if doc is None:
            return None
        return doc, requested_hash is not None and requested_hash.upper() == self._hashes[group_version]


def _pb_string(field: int, value: bytes) -> bytes:
    assert len(value) < 128
    return bytes([field << 3 | 2, len(value)]) + value


# ``/openapi/v2``: a swagger 2.0 document without definitions, in the gnostic protobuf encoding
# kubectl asks for (Document{swagger=1, info=2}, Info{title=1, version=2}). kubectl fetches v2
# only to validate, client side, an object whose group-version the v3 index lacks; an empty
# document lets it skip that (as upstream's does for an unknown kind) and report
# ``no matches for kind``. The schemas themselves are served by v3.
_V2_INFO = _pb_string(1, b"Kubernetes") + _pb_string(2, b"v1.32.0")
OPENAPI_V2_PROTOBUF = _pb_string(1, b"2.0") + _pb_string(2, _V2_INFO)
OPENAPI_V2_JSON = orjson.dumps({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.32.0"},
                                "paths": {}, "definitions": {}})
OPENAPI_V2_PROTOBUF_TYPE = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


def load_default() -> OpenApiV3:
    from jobplane.api import openapi

    return OpenApiV3(openapi.documents())
