"""Audit log: kube-apiserver's ``--audit-log-path`` and ``--audit-policy-file``
(``k8s.io/apiserver/pkg/audit``): one ``audit.k8s.io/v1`` Event per request and stage, as a
JSON line.

The policy is upstream's format (``audit.k8s.io/v1`` ``Policy``): ``rules`` matched in order by
``users``, ``userGroups``, ``verbs``, ``resources`` (``group``, ``resources`` with
``resource/subresource`` and ``*`` forms, ``resourceNames``), ``namespaces`` and
``nonResourceURLs``; the first match gives the ``level`` (``None``, ``Metadata``, ``Request``,
``RequestResponse``) and its ``omitStages`` join the policy's. No rule matching means no event.
Without a policy file every request is logged at ``Metadata``.

Never written, whatever the level: the contents of Secrets, of TokenRequests and
TokenReviews (their tokens), and the bodies of non-resource requests; those are logged at
``Metadata`` at most. The file is created 0600.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from jobplane.api import meta, randomness
from jobplane.api.rbac import Attributes
from jobplane.apiserver.identity import UserInfo

log = logging.getLogger(__name__)

Obj = dict[str, Any]
LEVELS = ("None", "Metadata", "Request", "RequestResponse")
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
# (group, resource, subresource) whose bodies may carry credentials: Metadata at most
_SENSITIVE = {("", "secrets"), ("", "serviceaccounts", "token"), ("authentication.k8s.io", "tokenreviews")}


def sensitive(a: Attributes) -> bool:
    if not a.resource_request:
        return True  # non-resource bodies (dashboard API, metrics) are never recorded
    return (a.api_group, a.resource) in _SENSITIVE or (a.api_group, a.resource, a.subresource) in _SENSITIVE


@dataclass(frozen=True)
class Rule:
    level: str
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = ()  # (group, resources, names)
    namespaces: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: tuple[str, ...] = ()

    def matches(self, user: UserInfo, a: Attributes) -> bool:
        if self.users and user.name not in self.users:
            return False
        if self.user_groups and not any(g in self.user_groups for g in user.groups):
            return False
        if self.verbs and a.verb not in self.verbs:
            return False
        if self.resources or self.namespaces:
            if not a.resource_request:
                return False
            if self.namespaces and a.namespace not in self.namespaces:
                return False  # "" in namespaces matches cluster-scoped requests
            if self.resources and not any(_resource_match(g, rs, names, a) for g, rs, names in self.resources):
                return False
        if self.non_resource_urls:
            if a.resource_request:
                return False
            if not any(u == a.path or (u.endswith("*") and a.path.startswith(u[:-1])) for u in self.non_resource_urls):
                return False
        return True


def _resource_match(group: str, resources: tuple[str, ...], names: tuple[str, ...], a: Attributes) -> bool:
    if group != a.api_group and group != "*":
        return False
    if resources:
        full = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
        ok = False
        for r in resources:
            if r in ("*", full) or (r == f"{a.resource}/*" and a.subresource) or \
                    (r.startswith("*/") and a.subresource == r[2:]):
                ok = True
                break
        if not ok:
            return False
    return not names or a.name in names


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...] = ()
    omit_stages: tuple[str, ...] = ()
    default_level: str = "None"  # when no rule matches

    def level_for(self, user: UserInfo, a: Attributes) -> tuple[str, frozenset[str]]:
        for rule in self.rules:
            if rule.matches(user, a):
                level = rule.level
                if level in ("Request", "RequestResponse") and sensitive(a):
                    level = "Metadata"
                return level, frozenset(self.omit_stages) | frozenset(rule.omit_stages)
        return self.default_level, frozenset(self.omit_stages)


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"audit policy: {what} must be a list of strings")
    return tuple(value)


def _stages(value: Any) -> tuple[str, ...]:
    stages = _strings(value, "omitStages")
    for s in stages:
        if s not in STAGES:
            raise ValueError(f"audit policy: unknown stage {s!r} (one of {', '.join(STAGES)})")
    return stages


def parse_policy(text: str) -> Policy:
    doc = yaml.safe_load(text) or {}
    if not isinstance(doc, dict) or doc.get("kind") != "Policy" or \
            doc.get("apiVersion") not in ("audit.k8s.io/v1", "audit.k8s.io/v1beta1"):
        raise ValueError("audit policy: expected kind Policy, apiVersion audit.k8s.io/v1")
    rules = []
    for i, r in enumerate(doc.get("rules") or ()):
        if not isinstance(r, dict) or r.get("level") not in LEVELS:
            raise ValueError(f"audit policy: rules[{i}].level must be one of {', '.join(LEVELS)}")
        resources = []
        for gr in r.get("resources") or ():
            resources.append((str(gr.get("group") or ""), _strings(gr.get("resources"), "resources"),
                              _strings(gr.get("resourceNames"), "resourceNames")))
        if resources and r.get("nonResourceURLs"):
            raise ValueError(f"audit policy: rules[{i}]: resources and nonResourceURLs are mutually exclusive")
        rules.append(Rule(r["level"], _strings(r.get("users"), "users"), _strings(r.get("userGroups"), "userGroups"),
                          _strings(r.get("verbs"), "verbs"), tuple(resources), _strings(r.get("namespaces"),
                                                                                        "namespaces"),
                          _strings(r.get("nonResourceURLs"), "nonResourceURLs"), _stages(r.get("omitStages"))))
    return Policy(tuple(rules), _stages(doc.get("omitStages")))


def load_policy(path: str | Path | None) -> Policy:
    if path is None:
        return Policy((), (), "Metadata")
    return parse_policy(Path(path).read_text())


@dataclass
class Record:
    """One request being audited: the event's fields, completed as the request proceeds."""

    level: str
    omit: frozenset[str]
    event: Obj
    request_body: bytes | None = None
    extra: Obj = field(default_factory=dict)


class AuditLog:
    """Writes events to a file (appended, one JSON object per line, 0600)."""

    def __init__(self, path: str | Path, policy: Policy, clock: Any, *, max_size_mb: int = 0,
                 max_backups: int = 0, max_age_days: int = 0) -> None:
        self.path = Path(path)
        self.policy = policy
        self.clock = clock
        # kube-apiserver's --audit-log-maxsize/-maxbackup/-maxage (lumberjack's rotation):
        # past max_size_mb the file becomes <name>-<UTC time>.<ext>; the oldest backups beyond
        # max_backups, and those older than max_age_days, are removed (0: no limit)
        self.max_bytes = max_size_mb * 2**20
        self.max_backups = max_backups
        self.max_age_days = max_age_days
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._open()

    def _open(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)
        self._fh = os.fdopen(fd, "ab", buffering=0)
        self._size = os.fstat(fd).st_size

    def backups(self) -> list[Path]:
        """The rotated files, oldest first."""
        stem, suffix = self.path.stem, self.path.suffix
        found = [p for p in self.path.parent.glob(f"{stem}-*{suffix}") if p != self.path]
        return sorted(found, key=lambda p: p.name)

    def _rotate(self) -> None:
        import datetime

        self._fh.close()
        stamp = datetime.datetime.fromtimestamp(self.clock.now(), datetime.UTC).strftime(
            "%Y-%m-%dT%H-%M-%S.%f")[:-3]
        target = self.path.with_name(f"{self.path.stem}-{stamp}{self.path.suffix}")
        n = 1
        while target.exists():
            target = self.path.with_name(f"{self.path.stem}-{stamp}-{n}{self.path.suffix}")
            n += 1
        os.replace(self.path, target)
        self._open()
        old = self.backups()
        if self.max_age_days:
            cutoff = self.clock.now() - self.max_age_days * 86400
            for p in old:
                if p.stat().st_mtime < cutoff:
                    p.unlink(missing_ok=True)
            old = self.backups()
        if self.max_backups and len(old) > self.max_backups:
            for p in old[:len(old) - self.max_backups]:
                p.unlink(missing_ok=True)

    def close(self) -> None:
        self._fh.close()

    def begin(self, user: UserInfo, a: Attributes, *, method: str, uri: str, source_ip: str | None,
              user_agent: str | None, impersonator: UserInfo | None = None,
              api_version: str = "") -> Record | None:
        level, omit = self.policy.level_for(user, a)
        if level == "None":
            return None
        now = meta.rfc3339_micro(self.clock.now())
        event: Obj = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level,
                      "auditID": randomness.uuid4(), "stage": "RequestReceived", "requestURI": uri,
                      "verb": a.verb, "user": user.to_status()}
        if impersonator is not None:
            event["user"], event["impersonatedUser"] = impersonator.to_status(), user.to_status()
        event["sourceIPs"] = [source_ip] if source_ip else []
        if user_agent:
            event["userAgent"] = user_agent
        if a.resource_request:
            ref: Obj = {"resource": a.resource}
            if a.namespace:
                ref["namespace"] = a.namespace
            if a.name:
                ref["name"] = a.name
            ref["apiGroup"] = a.api_group
            if api_version:
                ref["apiVersion"] = api_version
            if a.subresource:
                ref["subresource"] = a.subresource
            event["objectRef"] = ref
        event["requestReceivedTimestamp"] = now
        event["stageTimestamp"] = now
        record = Record(level, omit, event)
        self._emit(record, "RequestReceived")
        return record

    def finish(self, record: Record, code: int, *, request_body: bytes | None = None,
               response_body: bytes | None = None, decision: str | None = None, reason: str = "",
               stage: str = "ResponseComplete") -> None:
        ev = record.event
        ev["responseStatus"] = {"metadata": {}, "code": code}
        if decision is not None:
            annotations = {"authorization.k8s.io/decision": decision}
            if reason:
                annotations["authorization.k8s.io/reason"] = reason
            ev["annotations"] = annotations
        if record.level in ("Request", "RequestResponse") and request_body:
            parsed = _json(request_body)
            if parsed is not None:
                ev["requestObject"] = parsed
        if record.level == "RequestResponse" and response_body:
            parsed = _json(response_body)
            if parsed is not None:
                ev["responseObject"] = parsed
        ev["stageTimestamp"] = meta.rfc3339_micro(self.clock.now())
        self._emit(record, stage)

    def _emit(self, record: Record, stage: str) -> None:
        if stage in record.omit:
            return
        record.event["stage"] = stage
        line = orjson.dumps(record.event) + b"\n"
        with self._lock:
            try:
                if self.max_bytes and self._size and self._size + len(line) > self.max_bytes:
                    self._rotate()
                self._fh.write(line)
                self._size += len(line)
            except OSError as exc:  # a full disk must not fail the request
                log.warning("audit log %s: %s", self.path, exc)


def _json(body: bytes) -> Any:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, (dict, list)) else None


def reason_of(exc: Any) -> str:
    if isinstance(exc, Mapping):
        return str(exc.get("message") or "")
    return ""
