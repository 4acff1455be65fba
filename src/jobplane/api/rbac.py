"""RBAC, pure: upstream's rule matching (``plugin/pkg/auth/authorizer/rbac``), subject
matching, rule coverage for escalation checks (``pkg/registry/rbac/validation``), and the
validation of the four ``rbac.authorization.k8s.io/v1`` kinds."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jobplane.api.errors import FieldError, invalid, not_supported, required
from jobplane.api.validation.metadata import validate_object_meta_update

Obj = dict[str, Any]
GROUP = "rbac.authorization.k8s.io"
ALL = "*"


@dataclass(frozen=True, slots=True)
class Attributes:
    """What a request asks (upstream's ``authorizer.Attributes`` without the user)."""

    verb: str
    resource_request: bool = True
    namespace: str = ""
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""


@dataclass(frozen=True, slots=True)
class Rule:
    """A ``PolicyRule`` as tuples (hashable, fast to match)."""

    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @classmethod
    def from_obj(cls, rule: Mapping[str, Any]) -> Rule:
        def t(key: str) -> tuple[str, ...]:
            value = rule.get(key) or ()
            return tuple(str(v) for v in value) if isinstance(value, list | tuple) else ()
        return cls(t("verbs"), t("apiGroups"), t("resources"), t("resourceNames"), t("nonResourceURLs"))

    def to_obj(self) -> Obj:
        out: Obj = {"verbs": list(self.verbs)}
        if self.api_groups or self.resources:
            out["apiGroups"] = list(self.api_groups)
        if self.resources:
            out["resources"] = list(self.resources)
        if self.resource_names:
            out["resourceNames"] = list(self.resource_names)
        if self.non_resource_urls:
            out["nonResourceURLs"] = list(self.non_resource_urls)
        return out

    def allows(self, a: Attributes) -> bool:
        """``RuleAllows``: verb, then group/resource/name for resource requests, the URL
        (exact, ``*`` or a ``prefix*``) for the others."""
        if a.resource_request:
            return (_has(self.verbs, a.verb) and _has(self.api_groups, a.api_group)
                    and _resource_matches(self.resources, a.resource, a.subresource)
                    and (not self.resource_names or a.name in self.resource_names))
        return _has(self.verbs, a.verb) and _url_matches(self.non_resource_urls, a.path)


def _has(values: tuple[str, ...], want: str) -> bool:
    return want in values or ALL in values


def _resource_matches(resources: tuple[str, ...], resource: str, sub: str) -> bool:
    if ALL in resources:
        return True
    if not sub:
        return resource in resources
    combined = f"{resource}/{sub}"
    return combined in resources or f"*/{sub}" in resources


def _url_matches(urls: tuple[str, ...], path: str) -> bool:
    for url in urls:
        if url == ALL or url == path:
            return True
        if url.endswith("*") and path.startswith(url[:-1]):
            return True
    return False


def rules_of(role: Mapping[str, Any] | None) -> tuple[Rule, ...]:
    return tuple(Rule.from_obj(r) for r in (role or {}).get("rules") or () if isinstance(r, Mapping))


def subject_matches(subject: Mapping[str, Any], binding_namespace: str, name: str,
                    groups: Iterable[str]) -> bool:
    """``appliesToUser``: a User by name, a Group by membership, a ServiceAccount by its
    ``system:serviceaccount:NS:NAME`` user name."""
    kind = subject.get("kind")
    if kind == "User":
        return subject.get("name") == name
    if kind == "Group":
        return str(subject.get("name")) in set(groups)
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_namespace
        return name == f"system:serviceaccount:{ns}:{subject.get('name')}"
    return False


# -- coverage (escalation prevention) ----------------------------------------------------


def _atoms(rule: Rule) -> list[Rule]:
    """``BreakdownRule``: one rule per verb x group x resource x name (or URL)."""
    out: list[Rule] = []
    for group in rule.api_groups:
        for resource in rule.resources:
            for verb in rule.verbs:
                if rule.resource_names:
                    out.extend(Rule((verb,), (group,), (resource,), (n,)) for n in rule.resource_names)
                else:
                    out.append(Rule((verb,), (group,), (resource,)))
    for url in rule.non_resource_urls:
        out.extend(Rule((verb,), non_resource_urls=(url,)) for verb in rule.verbs)
    return out


def _covers_one(owner: Rule, atom: Rule) -> bool:
    """``ruleCovers``: the owner's sets contain the atom's (``*`` contains anything,
    ``*/sub`` any resource's ``sub``, a URL ``prefix*`` any URL under it)."""
    if not all(_has(owner.verbs, v) for v in atom.verbs):
        return False
    if atom.non_resource_urls:
        return all(_url_matches(owner.non_resource_urls, u) or
                   (u.endswith("*") and any(o.endswith("*") and u.startswith(o[:-1])
                                            for o in owner.non_resource_urls))
                   for u in atom.non_resource_urls)
    if not all(_has(owner.api_groups, g) for g in atom.api_groups):
        return False
    for res in atom.resources:
        if ALL in owner.resources or res in owner.resources:
            continue
        base, _, sub = res.partition("/")
        if sub and f"*/{sub}" in owner.resources:
            continue
        return False
    if owner.resource_names:
        return bool(atom.resource_names) and all(n in owner.resource_names for n in atom.resource_names)
    return True


def uncovered(owner: Sequence[Rule], servant: Iterable[Rule]) -> list[Rule]:
    """The servant's atomic rules no owner rule covers (empty: no escalation)."""
    missing = []
    for rule in servant:
        for atom in _atoms(rule):
            if not any(_covers_one(o, atom) for o in owner):
                missing.append(atom)
    return missing


def describe_rule(rule: Rule) -> str:
    """Upstream's ``CompactString`` for a PolicyRule, used in escalation messages."""
    parts = []
    if rule.api_groups:
        parts.append("APIGroups:" + _go_list(rule.api_groups))
    if rule.resources:
        parts.append("Resources:" + _go_list(rule.resources))
    if rule.non_resource_urls:
        parts.append("NonResourceURLs:" + _go_list(rule.non_resource_urls))
    if rule.resource_names:
        parts.append("ResourceNames:" + _go_list(rule.resource_names))
    parts.append("Verbs:" + _go_list(rule.verbs))
    return "{" + ", ".join(parts) + "}"


def _go_list(values: Iterable[str]) -> str:
    return "[" + " ".join(f'"{v}"' for v in values) + "]"


# -- validation ---------------------------------------------------------------------------

_SUBJECT_KINDS = ["Group", "ServiceAccount", "User"]


def _validate_rules(rules: Any, path: str, allow_empty_resources: bool = False) -> list[FieldError]:
    errs: list[FieldError] = []
    if rules is None:
        return errs
    if not isinstance(rules, list):
        return [invalid(path, rules, "must be a list")]
    for i, rule in enumerate(rules):
        p = f"{path}[{i}]"
        if not isinstance(rule, dict):
            errs.append(invalid(p, rule, "must be an object"))
            continue
        if not rule.get("verbs"):
            errs.append(required(f"{p}.verbs", "verbs must contain at least one value"))
        if rule.get("nonResourceURLs"):
            if rule.get("apiGroups") or rule.get("resources"):
                if not allow_empty_resources:
                    errs.append(invalid(f"{p}.nonResourceURLs", rule["nonResourceURLs"],
                                        "rules cannot apply to both regular resources and non-resource URLs"))
            continue
        if not rule.get("apiGroups"):
            errs.append(required(f"{p}.apiGroups", "resource rules must supply at least one api group"))
        if not rule.get("resources"):
            errs.append(required(f"{p}.resources", "resource rules must supply at least one resource"))
    return errs


def _validate_namespaced_rules(rules: Any) -> list[FieldError]:
    errs = _validate_rules(rules, "rules")
    for i, rule in enumerate(rules or ()):
        if isinstance(rule, dict) and rule.get("nonResourceURLs"):
            errs.append(invalid(f"rules[{i}].nonResourceURLs", rule["nonResourceURLs"],
                                "namespaced rules cannot apply to non-resource URLs"))
    return errs


def validate_role(obj: Mapping[str, Any]) -> list[FieldError]:
    return _validate_namespaced_rules(obj.get("rules"))


def validate_cluster_role(obj: Mapping[str, Any]) -> list[FieldError]:
    errs = _validate_rules(obj.get("rules"), "rules")
    agg = obj.get("aggregationRule")
    if agg is not None:
        selectors = agg.get("clusterRoleSelectors") if isinstance(agg, dict) else None
        if not selectors:
            errs.append(required("aggregationRule.clusterRoleSelectors",
                                 "at least one clusterRoleSelector required if aggregationRule is non-nil"))
    return errs


def _validate_role_ref(ref: Any, namespaced: bool) -> list[FieldError]:
    if not isinstance(ref, dict):
        return [required("roleRef", "")]
    errs: list[FieldError] = []
    if ref.get("apiGroup") != GROUP:
        errs.append(not_supported("roleRef.apiGroup", ref.get("apiGroup", ""), [GROUP]))
    kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
    if ref.get("kind") not in kinds:
        errs.append(not_supported("roleRef.kind", ref.get("kind", ""), kinds))
    if not ref.get("name"):
        errs.append(required("roleRef.name", ""))
    return errs


def _validate_subjects(subjects: Any, namespaced: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, s in enumerate(subjects or ()):
        p = f"subjects[{i}]"
        if not isinstance(s, dict):
            errs.append(invalid(p, s, "must be an object"))
            continue
        if not s.get("name"):
            errs.append(required(f"{p}.name", ""))
        kind = s.get("kind")
        if kind == "ServiceAccount":
            if s.get("apiGroup"):
                errs.append(not_supported(f"{p}.apiGroup", s["apiGroup"], [""]))
            if not namespaced and not s.get("namespace"):
                errs.append(required(f"{p}.namespace", ""))
        elif kind in ("User", "Group"):
            if s.get("apiGroup") != GROUP:
                errs.append(not_supported(f"{p}.apiGroup", s.get("apiGroup", ""), [GROUP]))
        else:
            errs.append(not_supported(f"{p}.kind", kind or "", _SUBJECT_KINDS))
    return errs


def validate_role_binding(obj: Mapping[str, Any]) -> list[FieldError]:
    return _validate_role_ref(obj.get("roleRef"), True) + _validate_subjects(obj.get("subjects"), True)


def validate_cluster_role_binding(obj: Mapping[str, Any]) -> list[FieldError]:
    return _validate_role_ref(obj.get("roleRef"), False) + _validate_subjects(obj.get("subjects"), False)


def validate_binding_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[FieldError]:
    """``roleRef`` is immutable (upstream: delete and re-create the binding)."""
    errs = validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {})
    if new.get("roleRef") != old.get("roleRef"):
        errs.append(invalid("roleRef", new.get("roleRef"), "cannot change roleRef"))
    return errs


def default_subjects(obj: Obj) -> None:
    """``SetDefaults_Subject``: User and Group subjects get the RBAC API group."""
    for s in obj.get("subjects") or ():
        if isinstance(s, dict) and s.get("kind") in ("User", "Group") and not s.get("apiGroup"):
            s["apiGroup"] = GROUP


# -- aggregation --------------------------------------------------------------------------


def aggregated_rules(role: Mapping[str, Any], cluster_roles: Iterable[Mapping[str, Any]]) -> list[Obj]:
    """The rules upstream's ClusterRole aggregation controller gives ``role``: for each
    ``clusterRoleSelectors`` entry, the rules of every other ClusterRole it selects (by
    name), each rule once."""
    from jobplane.api.selectors import from_label_selector_dict

    name = (role.get("metadata") or {}).get("name")
    others = sorted((r for r in cluster_roles if (r.get("metadata") or {}).get("name") != name),
                    key=lambda r: (r.get("metadata") or {}).get("name") or "")
    rules: list[Obj] = []
    for sel in ((role.get("aggregationRule") or {}).get("clusterRoleSelectors") or ()):
        matches = from_label_selector_dict(sel).matches
        for other in others:
            if matches((other.get("metadata") or {}).get("labels") or {}):
                for r in other.get("rules") or ():
                    if r not in rules:
                        rules.append(r)
    return rules


def aggregate_all(cluster_roles: list[Obj]) -> dict[str, list[Obj]]:
    """The rules every aggregated ClusterRole ends up with once the controller has settled
    (aggregated roles may select other aggregated roles: ``admin`` <- ``edit`` <- ``view``)."""
    current = {(r.get("metadata") or {}).get("name", ""): r for r in cluster_roles}
    changed: dict[str, list[Obj]] = {}
    for _ in range(len(current) + 1):
        progress = False
        for name, role in list(current.items()):
            if not role.get("aggregationRule"):
                continue
            rules = aggregated_rules(role, current.values())
            if rules != (role.get("rules") or []):
                current[name] = {**role, "rules": rules}
                changed[name] = rules
                progress = True
        if not progress:
            break
    return changed
