"""Authentication: who sent a request, as kube-apiserver's authenticator chain decides it.

- bearer tokens: the admin token (``DIR/pki/token``: user ``jobplane-admin``, group
  ``system:masters``), static tokens from ``--token-auth-file`` (upstream's CSV
  ``token,user,uid,"group1,group2"``), and any further token authenticators
  (service-account JWTs, bootstrap tokens) registered by the server;
- X.509 client certificates signed by the server's CA (CN = user, O = groups), refused
  after expiry or when their serial is on the server's deny list (``usercerts``).

A request that presents credentials nobody accepts, or none at all, is answered 401
``Unauthorized`` and learns nothing else (upstream's ``Unauthorized`` Status). The
health and version endpoints stay open to unauthenticated callers (upstream's
``system:public-info-viewer``)."""

from __future__ import annotations

import csv
import io
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from jobplane.api import errors
from jobplane.apiserver.identity import ADMIN, UserInfo, authenticated

log = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version", "/version/"})

TokenAuthenticator = Callable[[str], Awaitable[UserInfo | None]]


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(("/healthz/", "/livez/", "/readyz/"))


def parse_token_file(text: str, source: str = "token file") -> dict[str, UserInfo]:
    """Upstream's static token file: ``token,user,uid[,"group1,group2"]`` per line; a
    line with fewer than three columns is an error, an empty token is skipped, a token seen
    twice keeps its first line (upstream warns and keeps the first too)."""
    users: dict[str, UserInfo] = {}
    reader = csv.reader(io.StringIO(text), skipinitialspace=True)
    for lineno, record in enumerate(reader, 1):
        if not record or (len(record) == 1 and not record[0].strip()):
            continue
        if len(record) < 3:
            raise ValueError(f"{source}: token file '{source}' must have at least 3 columns (token, user "
                             f"name, user uid), found {len(record)} on line {lineno}")
        token = record[0]
        if not token:
            log.warning("%s: empty token on line %d, skipping", source, lineno)
            continue
        if token in users:
            log.warning("%s: duplicate token on line %d, keeping the first", source, lineno)
            continue
        groups = [g.strip() for g in record[3].split(",") if g.strip()] if len(record) >= 4 else []
        users[token] = authenticated(record[1], groups, record[2])
    return users


def load_token_file(path: str | Path) -> dict[str, UserInfo]:
    return parse_token_file(Path(path).read_text(), str(path))


def _name_parts(rdns: Any, attr: str) -> list[str]:
    return [value for rdn in rdns or () for key, value in rdn if key == attr]


def user_from_peercert(cert: Mapping[str, Any]) -> UserInfo | None:
    """The user a verified client certificate names (``ssl.getpeercert()`` form):
    CN = user name, every O = a group (upstream's ``CommonNameUserConversion``)."""
    subject = cert.get("subject")
    names = _name_parts(subject, "commonName")
    if not names or not names[0]:
        return None
    return authenticated(names[0], _name_parts(subject, "organizationName"))


class CertDenyList:
    """Serial numbers of revoked client certificates, one hex serial per line in a file that
    ``jobplane kubeconfig --revoke`` appends to; re-read when it changes (checked at most
    once a second, so a revocation takes effect within a second)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._serials: frozenset[str] = frozenset()
        self._mtime = -1.0
        self._checked = 0.0

    def _refresh(self) -> None:
        now = time.monotonic()
        if self.path is None or now - self._checked < 1.0:
            return
        self._checked = now
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            self._serials, self._mtime = frozenset(), -1.0
            return
        if mtime != self._mtime:
            self._mtime = mtime
            self._serials = frozenset(line.split()[0].upper() for line in self.path.read_text().splitlines()
                                      if line.strip() and not line.startswith("#"))

    def revoked(self, serial: str) -> bool:
        self._refresh()
        return serial.upper().lstrip("0") in {s.lstrip("0") for s in self._serials} if self._serials else False


def _on_unix_socket(transport: Any) -> bool:
    sock = transport.get_extra_info("socket") if transport is not None else None
    return sock is not None and sock.family == socket.AF_UNIX


class Authenticator:
    """The chain: bearer token (static map, then the registered token authenticators), then
    the client certificate. ``authenticate`` returns the user or raises 401."""

    def __init__(self, admin_token: str | None = None, *, static_tokens: Mapping[str, UserInfo] | None = None,
                 deny_list: CertDenyList | None = None) -> None:
        # keyed by the whole header value, so the common case is one dict lookup
        self.tokens: dict[str, UserInfo] = {"Bearer " + k: v for k, v in (static_tokens or {}).items()}
        if admin_token:
            self.tokens["Bearer " + admin_token] = ADMIN
        self.token_authenticators: list[TokenAuthenticator] = []
        # tokens valid only on a unix-socket connection (the server's own agent process)
        self.local_tokens: dict[str, UserInfo] = {}
        self.deny_list = deny_list or CertDenyList(None)

    def add_token_authenticator(self, fn: TokenAuthenticator) -> None:
        self.token_authenticators.append(fn)

    def add_local_token(self, token: str, user: UserInfo) -> None:
        """Accept ``token`` as ``user`` on unix-socket connections only: a socket credential
        (never valid over TCP, never answered by TokenReview)."""
        self.local_tokens["Bearer " + token] = user

    async def authenticate_token(self, token: str) -> UserInfo | None:
        """A bare token (no ``Bearer``): what TokenReview and the agent's log endpoint ask."""
        user = self.tokens.get("Bearer " + token)
        if user is not None:
            return user
        for fn in self.token_authenticators:
            user = await fn(token)
            if user is not None:
                return user
        return None

    async def authenticate(self, authorization: str | None, transport: Any) -> UserInfo:
        if authorization:
            user = self.tokens.get(authorization)
            if user is not None:
                return user
            if self.local_tokens and authorization in self.local_tokens and _on_unix_socket(transport):
                return self.local_tokens[authorization]
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                user = await self.authenticate_token(token.strip())
                if user is not None:
                    return user
        user = self.from_certificate(transport)
        if user is not None:
            return user
        raise errors.unauthorized()

    def from_certificate(self, transport: Any) -> UserInfo | None:
        if transport is None:
            return None
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return None
        cert = ssl_object.getpeercert()
        if not cert:
            return None
        not_after = cert.get("notAfter")
        if not_after and ssl.cert_time_to_seconds(not_after) < time.time():
            return None  # expired since the connection was made
        if self.deny_list.revoked(str(cert.get("serialNumber", ""))):
            return None
        return user_from_peercert(cert)
