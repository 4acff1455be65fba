"""The access and identity reviews: ``authorization.k8s.io/v1`` SelfSubjectAccessReview,
SelfSubjectRulesReview, SubjectAccessReview, LocalSubjectAccessReview and
``authentication.k8s.io/v1`` SelfSubjectReview and TokenReview. Created, answered and
never stored, as upstream (``kubectl auth can-i [--list]`` and ``kubectl auth whoami``)."""

from __future__ import annotations

from typing import Any

from jobplane.api import errors
from jobplane.api.rbac import Attributes, Rule
from jobplane.api.registry import (
    LOCAL_SUBJECT_ACCESS_REVIEWS,
    SELF_SUBJECT_ACCESS_REVIEWS,
    SELF_SUBJECT_REVIEWS,
    SELF_SUBJECT_RULES_REVIEWS,
    SUBJECT_ACCESS_REVIEWS,
    TOKEN_REVIEWS,
    ResourceInfo,
)
from jobplane.apiserver.identity import ANONYMOUS, MASTERS, UserInfo, current_user

Obj = dict[str, Any]


def _attributes(info: ResourceInfo, spec: Obj) -> Attributes:
    """``ResourceAttributesFrom`` / ``NonResourceAttributesFrom``; 422 unless exactly one is set."""
    ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if bool(ra) == bool(nra):
        raise errors.invalid_object(info.kind, info.group, "", [errors.invalid(
            "spec.resourceAttributes", _go_struct(ra),
            "exactly one of nonResourceAttributes or resourceAttributes must be specified")])
    if nra:
        return Attributes(str(nra.get("verb") or ""), False, path=str(nra.get("path") or ""))
    assert ra is not None
    return Attributes(str(ra.get("verb") or ""), True, str(ra.get("namespace") or ""), str(ra.get("group") or ""),
                      str(ra.get("resource") or ""), str(ra.get("subresource") or ""), str(ra.get("name") or ""))


def _go_struct(value: Any) -> Any:
    return errors.RawValue("nil") if value is None else value


def _review_object(info: ResourceInfo, body: Obj, status: Obj) -> Obj:
    md = dict(body.get("metadata") or {})
    md.setdefault("creationTimestamp", None)
    return {"kind": info.kind, "apiVersion": info.api_version, "metadata": md, "spec": body.get("spec") or {},
            "status": status}


def _user_from_spec(spec: Obj) -> UserInfo:
    extra = {k: tuple((v.get("items") if isinstance(v, dict) else v) or ()) for k, v in (spec.get("extra") or {}).items()}
    return UserInfo(str(spec.get("user") or ""), str(spec.get("uid") or ""), tuple(spec.get("groups") or ()), extra)


def _access_status(allowed: bool, reason: str) -> Obj:
    out: Obj = {"allowed": allowed}
    if reason:
        out["reason"] = reason
    return out


class Reviews:
    """Answers a create on a review kind for the current user."""

    def __init__(self, authorizer: Any, rbac: Any = None, authenticator: Any = None) -> None:
        self.authorizer = authorizer  # the whole chain (what a request would meet)
        self.rbac = rbac  # RbacAuthorizer, for the rules a SelfSubjectRulesReview lists
        self.authenticator = authenticator

    def handles(self, info: ResourceInfo) -> bool:
        return info.virtual

    async def create(self, info: ResourceInfo, namespace: str | None, body: Obj) -> Obj:
        user = current_user.get() or ANONYMOUS
        spec = body.get("spec")
        if not isinstance(spec, dict):
            spec = {}
            body = dict(body, spec=spec)
        if info is SELF_SUBJECT_ACCESS_REVIEWS:
            return _review_object(info, body, _access_status(*self.authorizer.authorize(user, _attributes(info, spec))))
        if info in (SUBJECT_ACCESS_REVIEWS, LOCAL_SUBJECT_ACCESS_REVIEWS):
            attrs = _attributes(info, spec)
            if info is LOCAL_SUBJECT_ACCESS_REVIEWS and attrs.namespace != (namespace or ""):
                raise errors.invalid_object(info.kind, info.group, "", [errors.invalid(
                    "spec.resourceAttributes.namespace", attrs.namespace,
                    "must match metadata.namespace")])
            subject = _user_from_spec(spec)
            if not subject.name and not subject.groups:
                raise errors.invalid_object(info.kind, info.group, "", [errors.invalid(
                    "spec.user", "", "at least one of user or group must be specified")])
            return _review_object(info, body, _access_status(*self.authorizer.authorize(subject, attrs)))
        if info is SELF_SUBJECT_RULES_REVIEWS:
            return _review_object(info, body, self.rules_status(user, str(spec.get("namespace") or "")))
        if info is SELF_SUBJECT_REVIEWS:
            return _review_object(info, body, {"userInfo": user.to_status()})
        if info is TOKEN_REVIEWS:
            return _review_object(info, body, await self._token_status(spec))
        raise errors.method_not_supported(info.plural, info.group, "create")

    def rules_status(self, user: UserInfo, namespace: str) -> Obj:
        """``SelfSubjectRulesReview``: the RBAC rules that apply in ``namespace``; other
        authorizers (Node) cannot list theirs, so the answer is then ``incomplete``."""
        rules: list[Rule] = []
        problems: list[str] = []
        if self.rbac is not None:
            rules, problems = self.rbac.rules_for(user, namespace)
        resource_rules, url_rules = [], []
        for r in rules:
            if r.non_resource_urls:
                url_rules.append({"verbs": list(r.verbs), "nonResourceURLs": list(r.non_resource_urls)})
            elif r.resources:
                out: Obj = {"verbs": list(r.verbs), "apiGroups": list(r.api_groups), "resources": list(r.resources)}
                if r.resource_names:
                    out["resourceNames"] = list(r.resource_names)
                resource_rules.append(out)
        status: Obj = {"resourceRules": resource_rules, "nonResourceRules": url_rules,
                       "incomplete": bool(problems) or user.name.startswith("system:node:")}
        if problems:
            status["evaluationError"] = ", ".join(problems)
        if MASTERS in user.groups and not any(r.get("verbs") == ["*"] for r in resource_rules):
            resource_rules.insert(0, {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})
            url_rules.insert(0, {"verbs": ["*"], "nonResourceURLs": ["*"]})
        return status

    async def _token_status(self, spec: Obj) -> Obj:
        token = str(spec.get("token") or "")
        user = await self.authenticator.authenticate_token(token) if (self.authenticator and token) else None
        if user is None:
            return {"authenticated": False, "user": {}, "error": "invalid bearer token"}
        out: Obj = {"authenticated": True, "user": user.to_status()}
        if spec.get("audiences"):
            out["audiences"] = list(spec["audiences"])
        return out
