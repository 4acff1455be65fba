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
        self.index = orjson.dumps({"paths": {
            k: {"serverRelativeURL": f"{PREFIX}/{k}?hash={h}"} for k, h in self._hashes.items()}})

    def document(self, group_version: str, requested_hash: str | None) -> tuple[bytes, bool] | None:
        """(document bytes, immutable?) for ``api/v1`` / ``apis/batch/v1``; None if unknown.
        Only a request naming the current hash may be cached forever."""
        doc = self._docs.get(group_version)
        if doc is None:
            return None
        return doc, requested_hash is not None and requested_hash.upper() == self._hashes[group_version]


def load_default() -> OpenApiV3:
    from jobplane.api import openapi

    return OpenApiV3(openapi.documents())
