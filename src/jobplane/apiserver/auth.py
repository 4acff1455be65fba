"""Bearer-token authentication: one admin token, generated once and kept in
``DIR/pki/token`` (0600). Health and version endpoints stay open, as upstream's
``system:public-info-viewer`` allows."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

TOKEN_FILE = "token"
PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version"})


def ensure_token(pki_dir: Path) -> str:
    """Read the token, creating it on first start."""
    pki_dir.mkdir(parents=True, exist_ok=True)
    path = pki_dir / TOKEN_FILE
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    os.chmod(path, 0o600)
    return token


class TokenAuthenticator:
    """Checks ``Authorization: Bearer <token>``; precomputes the expected header once."""

    def __init__(self, token: str) -> None:
        self._expected = ("Bearer " + token).encode()

    def is_public(self, path: str) -> bool:
        return path in PUBLIC_PATHS or path.startswith(("/healthz/", "/livez/", "/readyz/"))

    def check(self, authorization: str | None) -> bool:
        if not authorization:
            return False
        return hmac.compare_digest(authorization.encode("utf-8", "surrogateescape"), self._expected)  # non-UTF-8 bytes: 401, not 500
