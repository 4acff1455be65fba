"""RBAC escalation prevention (``pkg/registry/rbac``): nobody grants what they do not hold.

Writing a Role or ClusterRole needs every rule in it already (or ``escalate`` on it);
writing a binding needs every rule of the role it references (or ``bind`` on that role).
``system:masters`` and trusted in-process callers pass."""

from __future__ import annotations

from typing import Any

from jobplane.api import errors
from jobplane.api.rbac import GROUP, Attributes, Rule, describe_rule, rules_of, uncovered
from jobplane.api.registry import CLUSTERROLEBINDINGS, CLUSTERROLES, ROLEBINDINGS, ROLES, ResourceInfo
from jobplane.apiserver.identity import MASTERS, UserInfo, current_user

Obj = dict[str, Any]


class RbacEscalationCheck:
    def __init__(self, authorizer: Any, rbac: Any) -> None:
        self.authorizer = authorizer
        self.rbac = rbac

    async def admit(self, op: str, info: ResourceInfo, new: Obj | None, old: Obj | None,
                    subresource: str | None = None) -> None:
        if op == "DELETE" or new is None or info not in (ROLES, CLUSTERROLES, ROLEBINDINGS, CLUSTERROLEBINDINGS):
            return
        user = current_user.get()
        if user is None or MASTERS in user.groups:
            return
        md = new.get("metadata") or {}
        ns, name = md.get("namespace") or "", md.get("name") or ""
        if info in (ROLES, CLUSTERROLES):
            if old is not None and rules_of(old) == rules_of(new):
                return
            if self._allowed(user, Attributes("escalate", True, ns, GROUP, info.plural, "", name)):
                return
            self._confirm_no_escalation(user, info, ns, name, rules_of(new))
            return
        if old is not None and old.get("roleRef") == new.get("roleRef") and \
                old.get("subjects") == new.get("subjects"):
            return
        ref = new.get("roleRef") or {}
        role_kind, role_name = ref.get("kind"), ref.get("name") or ""
        plural = "clusterroles" if role_kind == "ClusterRole" else "roles"
        if self._allowed(user, Attributes("bind", True, ns, GROUP, plural, "", role_name)):
            return
        rules = self._role_rules(role_kind, ns, role_name)
        if rules is None:
            what = "clusterrole" if role_kind == "ClusterRole" else "role"
            raise errors.StatusError(
                404, "NotFound", f'{what}.rbac.authorization.k8s.io "{role_name}" not found',
                {"name": role_name, "group": GROUP, "kind": f"{what}s"})
        self._confirm_no_escalation(user, info, ns, name, rules)

    def _allowed(self, user: UserInfo, attrs: Attributes) -> bool:
        return self.authorizer.authorize(user, attrs)[0]

    def _role_rules(self, kind: str | None, ns: str, name: str) -> tuple[Rule, ...] | None:
        if kind == "ClusterRole":
            return self.rbac.cluster_roles.get(name)
        return self.rbac.roles.get((ns, name))

    def _confirm_no_escalation(self, user: UserInfo, info: ResourceInfo, ns: str, name: str,
                               rules: tuple[Rule, ...]) -> None:
        owner, problems = self.rbac.rules_for(user, ns)
        missing = uncovered(owner, rules)
        if not missing:
            return
        groups = "[" + " ".join(f'"{g}"' for g in user.groups) + "]"
        msg = (f'user "{user.name}" (groups={groups}) is attempting to grant RBAC permissions not currently held:\n'
               + "\n".join(describe_rule(r) for r in missing))
        if problems:
            msg += "; resolution errors: [" + " ".join(problems) + "]"
        raise errors.StatusError(403, "Forbidden", f'{info.plural}.{GROUP} "{name}" is forbidden: {msg}',
                                 {"name": name, "group": GROUP, "kind": info.plural})
