"""The RBAC authorizer: upstream's evaluation over an in-memory index of the four RBAC
kinds, kept current by watching the store (as kube-apiserver's authorizer reads its
informers).

Fast on the hot path: bindings are indexed by subject (user name, group), and decisions
are cached until any RBAC object changes, so a repeated GET costs one dict lookup."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from jobplane.aio import cancel_and_wait
from jobplane.api.rbac import Attributes, Rule, rules_of, subject_matches
from jobplane.api.registry import (
    CLUSTERROLEBINDINGS,
    CLUSTERROLES,
    RBAC_KINDS,
    ROLEBINDINGS,
    ROLES,
    ResourceInfo,
)
from jobplane.apiserver.authz import Decision
from jobplane.apiserver.identity import UserInfo
from jobplane.apiserver.mirror import mirror

# Decisions cached (cleared when full). About 330 bytes each, and most requests name an object
# seen a few times at most (an Event's create, a pod's status patches): 50,000 grew to ~16 MB
# before each clear in a long Job, while the keys that recur (lists, watches, creates without
# a name) are a few hundred.
_CACHE_MAX = 4_096
Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Ref:
    """One binding that names a subject: where it applies and which role it grants."""

    binding: str  # "<namespace>/<name>" ("/<name>" for a ClusterRoleBinding)
    namespace: str  # "" for a ClusterRoleBinding: every namespace and the cluster scope
    role_kind: str
    role_name: str


class RbacAuthorizer:
    def __init__(self) -> None:
        self.roles: dict[tuple[str, str], tuple[Rule, ...]] = {}
        self.cluster_roles: dict[str, tuple[Rule, ...]] = {}
        self.bindings: dict[tuple[str, str], Obj] = {}  # (namespace or "", name) -> binding
        self.by_user: dict[str, list[_Ref]] = {}
        self.by_group: dict[str, list[_Ref]] = {}
        self._cache: dict[tuple[Any, ...], Decision] = {}
        self._tasks: list[asyncio.Task] = []

    # -- index ---------------------------------------------------------------------------

    def apply(self, info: ResourceInfo, event: str, obj: Obj) -> None:
        md = obj.get("metadata") or {}
        ns, name = md.get("namespace") or "", md.get("name") or ""
        deleted = event == "DELETED"
        if info is ROLES:
            if deleted:
                self.roles.pop((ns, name), None)
            else:
                self.roles[(ns, name)] = rules_of(obj)
        elif info is CLUSTERROLES:
            if deleted:
                self.cluster_roles.pop(name, None)
            else:
                self.cluster_roles[name] = rules_of(obj)
        elif info in (ROLEBINDINGS, CLUSTERROLEBINDINGS):
            key = (ns if info is ROLEBINDINGS else "", name)
            if deleted:
                self.bindings.pop(key, None)
            else:
                self.bindings[key] = obj
            self._reindex()
        self._cache.clear()

    def _reindex(self) -> None:
        by_user: dict[str, list[_Ref]] = {}
        by_group: dict[str, list[_Ref]] = {}
        for (ns, name), b in self.bindings.items():
            ref_obj = b.get("roleRef") or {}
            ref = _Ref(f"{ns}/{name}", ns, ref_obj.get("kind", ""), ref_obj.get("name", ""))
            for s in b.get("subjects") or ():
                kind = s.get("kind")
                if kind == "User":
                    by_user.setdefault(s.get("name", ""), []).append(ref)
                elif kind == "Group":
                    by_group.setdefault(s.get("name", ""), []).append(ref)
                elif kind == "ServiceAccount":
                    sa_ns = s.get("namespace") or ns
                    by_user.setdefault(f"system:serviceaccount:{sa_ns}:{s.get('name')}", []).append(ref)
        self.by_user, self.by_group = by_user, by_group

    # -- evaluation ----------------------------------------------------------------------

    def _refs(self, user: UserInfo) -> Iterable[_Ref]:
        yield from self.by_user.get(user.name, ())
        for g in user.groups:
            yield from self.by_group.get(g, ())

    def _role_rules(self, ref: _Ref) -> tuple[tuple[Rule, ...] | None, str]:
        if ref.role_kind == "ClusterRole":
            rules = self.cluster_roles.get(ref.role_name)
            missing = f'clusterrole.rbac.authorization.k8s.io "{ref.role_name}" not found'
        else:
            rules = self.roles.get((ref.namespace, ref.role_name))
            missing = f'role.rbac.authorization.k8s.io "{ref.role_name}" not found'
        return rules, "" if rules is not None else missing

    def authorize(self, user: UserInfo, attrs: Attributes) -> Decision:
        key = (user.name, user.groups, attrs)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        decision = self._evaluate(user, attrs)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[key] = decision
        return decision

    def _evaluate(self, user: UserInfo, attrs: Attributes) -> Decision:
        problems: list[str] = []
        for ref in self._refs(user):
            if ref.namespace and ref.namespace != attrs.namespace:
                continue
            rules, problem = self._role_rules(ref)
            if rules is None:
                problems.append(problem)
                continue
            for rule in rules:
                if rule.allows(attrs):
                    return True, ""
        return False, f"RBAC: [{', '.join(sorted(set(problems)))}]" if len(problems) > 1 else \
            (f"RBAC: {problems[0]}" if problems else "")

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[Rule], list[str]]:
        """Every rule that applies to ``user`` in ``namespace`` ("" = cluster-wide only), and
        the problems met (missing roles): what SelfSubjectRulesReview and escalation checks use."""
        rules: list[Rule] = []
        problems: list[str] = []
        seen: set[str] = set()
        for ref in self._refs(user):
            if ref.binding in seen or (ref.namespace and ref.namespace != namespace):
                continue
            seen.add(ref.binding)
            found, problem = self._role_rules(ref)
            if found is None:
                problems.append(problem)
            else:
                rules.extend(found)
        return rules, problems

    def subjects_bound(self, binding: Obj, user: UserInfo) -> bool:
        ns = (binding.get("metadata") or {}).get("namespace") or ""
        return any(subject_matches(s, ns, user.name, user.groups) for s in binding.get("subjects") or ())

    # -- feeding from the store ----------------------------------------------------------

    async def start(self, service: Any) -> None:
        """List every RBAC kind into the index, then follow the changes in the background."""
        for info in RBAC_KINDS:
            self._tasks.append(await mirror(service, info, functools.partial(self.apply, info),
                                            functools.partial(self._forget, info), f"rbac-{info.plural}"))

    def _forget(self, info: ResourceInfo) -> None:
        """Before a relist: every object of ``info`` deleted (so the caches built on them go too)."""
        for key in list(self._keys(info)):
            self.apply(info, "DELETED", {"metadata": {"namespace": key[0], "name": key[1]}})

    def _keys(self, info: ResourceInfo) -> list[tuple[str, str]]:
        if info is ROLES:
            return list(self.roles)
        if info is CLUSTERROLES:
            return [("", n) for n in self.cluster_roles]
        is_rb = info is ROLEBINDINGS
        return [k for k in self.bindings if bool(k[0]) == is_rb]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        await cancel_and_wait(tasks)

