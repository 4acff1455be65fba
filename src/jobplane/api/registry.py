"""Registry of the kinds jobplane serves.

Everything that routes, discovers, stores or prints a kind looks it up here,
so adding a kind is one entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceInfo:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()  # "status", "log", "binding"/"eviction" (pods: create only)
    verbs: tuple[str, ...] = ALL_VERBS
    # Served for reading only under this group/version (events.k8s.io/v1 events).
    read_only: bool = False
    # Storage resource shared with another served version (events.k8s.io -> core events).
    storage_resource: str = ""
    list_kind: str = field(default="")
    # Not stored: a create computes an answer and returns it (the access reviews).
    virtual: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``jobs.batch`` / ``pods``: the name used in error messages and storage keys."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def storage_key_prefix(self) -> str:
        return self.storage_resource or self.group_resource

    @property
    def kind_list(self) -> str:
        return self.list_kind or f"{self.kind}List"

    def base_path(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def collection_path(self, namespace: str | None) -> str:
        if self.namespaced and namespace:
            return f"{self.base_path()}/namespaces/{namespace}/{self.plural}"
        return f"{self.base_path()}/{self.plural}"

    def object_path(self, namespace: str | None, name: str) -> str:
        return f"{self.collection_path(namespace)}/{name}"

    def storage_key(self, namespace: str | None, name: str) -> str:
        """Storage key: ``<group_resource>/<namespace>/<name>`` ('' namespace when cluster-scoped)."""
        return f"{self.storage_key_prefix}/{namespace or ''}/{name}"

    def storage_prefix(self, namespace: str | None) -> str:
        """Prefix for a list/watch: every namespace when ``namespace`` is None."""
        if self.namespaced and namespace:
            return f"{self.storage_key_prefix}/{namespace}/"
        return f"{self.storage_key_prefix}/"


NAMESPACES = ResourceInfo("", "v1", "Namespace", "namespaces", "namespace", False, ("ns",),
                          subresources=("status", "finalize"),
                          verbs=("create", "delete", "get", "list", "patch", "update", "watch"))
NODES = ResourceInfo("", "v1", "Node", "nodes", "node", False, ("no",), subresources=("status",))
PODS = ResourceInfo("", "v1", "Pod", "pods", "pod", True, ("po",), ("all",),
                   ("attach", "binding", "ephemeralcontainers", "eviction", "exec", "log", "portforward", "status"))
EVENTS = ResourceInfo("", "v1", "Event", "events", "event", True, ("ev",))
EVENTS_V1 = ResourceInfo("events.k8s.io", "v1", "Event", "events", "event", True, ("ev",),
                         verbs=("get", "list", "watch"), read_only=True, storage_resource="events")
JOBS = ResourceInfo("batch", "v1", "Job", "jobs", "job", True, (), ("all",), ("status",))
CRONJOBS = ResourceInfo("batch", "v1", "CronJob", "cronjobs", "cronjob", True, ("cj",), ("all",), ("status",))
LEASES = ResourceInfo("coordination.k8s.io", "v1", "Lease", "leases", "lease", True)
CONFIGMAPS = ResourceInfo("", "v1", "ConfigMap", "configmaps", "configmap", True, ("cm",))
SECRETS = ResourceInfo("", "v1", "Secret", "secrets", "secret", True)
SERVICEACCOUNTS = ResourceInfo("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", True, ("sa",),
                               subresources=("token",))
SERVICES = ResourceInfo("", "v1", "Service", "services", "service", True, ("svc",), ("all",), ("status",),
                        verbs=("create", "delete", "get", "list", "patch", "update", "watch"))
PERSISTENTVOLUMECLAIMS = ResourceInfo("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims",
                                      "persistentvolumeclaim", True, ("pvc",), subresources=("status",))
PERSISTENTVOLUMES = ResourceInfo("", "v1", "PersistentVolume", "persistentvolumes", "persistentvolume", False,
                                 ("pv",), subresources=("status",))
ENDPOINTSLICES = ResourceInfo("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", True)
STORAGECLASSES = ResourceInfo("storage.k8s.io", "v1", "StorageClass", "storageclasses", "storageclass", False,
                              ("sc",))

# metrics.k8s.io: served by the API server from its agents' measurements (nothing stored).
RUNTIMECLASSES = ResourceInfo("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", "runtimeclass", False)
NODE_METRICS = ResourceInfo("metrics.k8s.io", "v1beta1", "NodeMetrics", "nodes", "", False,
                            verbs=("get", "list"), read_only=True)
POD_METRICS = ResourceInfo("metrics.k8s.io", "v1beta1", "PodMetrics", "pods", "", True,
                           verbs=("get", "list"), read_only=True)

_RBAC = "rbac.authorization.k8s.io"
ROLES = ResourceInfo(_RBAC, "v1", "Role", "roles", "role", True)
ROLEBINDINGS = ResourceInfo(_RBAC, "v1", "RoleBinding", "rolebindings", "rolebinding", True)
CLUSTERROLES = ResourceInfo(_RBAC, "v1", "ClusterRole", "clusterroles", "clusterrole", False)
CLUSTERROLEBINDINGS = ResourceInfo(_RBAC, "v1", "ClusterRoleBinding", "clusterrolebindings",
                                   "clusterrolebinding", False)
_AUTHZ = "authorization.k8s.io"
_CREATE_ONLY = ("create",)
SELF_SUBJECT_ACCESS_REVIEWS = ResourceInfo(_AUTHZ, "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews",
                                           "selfsubjectaccessreview", False, verbs=_CREATE_ONLY, virtual=True)
SELF_SUBJECT_RULES_REVIEWS = ResourceInfo(_AUTHZ, "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews",
                                          "selfsubjectrulesreview", False, verbs=_CREATE_ONLY, virtual=True)
SUBJECT_ACCESS_REVIEWS = ResourceInfo(_AUTHZ, "v1", "SubjectAccessReview", "subjectaccessreviews",
                                      "subjectaccessreview", False, verbs=_CREATE_ONLY, virtual=True)
LOCAL_SUBJECT_ACCESS_REVIEWS = ResourceInfo(_AUTHZ, "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews",
                                            "localsubjectaccessreview", True, verbs=_CREATE_ONLY, virtual=True)
SELF_SUBJECT_REVIEWS = ResourceInfo("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews",
                                    "selfsubjectreview", False, verbs=_CREATE_ONLY, virtual=True)
TOKEN_REVIEWS = ResourceInfo("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", "tokenreview", False,
                             verbs=_CREATE_ONLY, virtual=True)
CERTIFICATESIGNINGREQUESTS = ResourceInfo("certificates.k8s.io", "v1", "CertificateSigningRequest",
                                          "certificatesigningrequests", "certificatesigningrequest", False, ("csr",),
                                          subresources=("approval", "status"))
RBAC_KINDS = (ROLES, ROLEBINDINGS, CLUSTERROLES, CLUSTERROLEBINDINGS)
REVIEWS = (SELF_SUBJECT_ACCESS_REVIEWS, SELF_SUBJECT_RULES_REVIEWS, SUBJECT_ACCESS_REVIEWS,
           LOCAL_SUBJECT_ACCESS_REVIEWS, SELF_SUBJECT_REVIEWS, TOKEN_REVIEWS)

RESOURCES: tuple[ResourceInfo, ...] = (NAMESPACES, NODES, PODS, EVENTS, CONFIGMAPS, SECRETS, SERVICEACCOUNTS,
                                       SERVICES, PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, EVENTS_V1, JOBS,
                                       CRONJOBS, LEASES, ENDPOINTSLICES, STORAGECLASSES, RUNTIMECLASSES, NODE_METRICS,
                                       POD_METRICS,
                                       *RBAC_KINDS, *REVIEWS, CERTIFICATESIGNINGREQUESTS)

# Resources clients name by default: "events" means core/v1 events, as in kubectl.
_PREFERRED = (NAMESPACES, NODES, PODS, EVENTS, CONFIGMAPS, SECRETS, SERVICEACCOUNTS, SERVICES,
              PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, JOBS, CRONJOBS, LEASES, ENDPOINTSLICES, STORAGECLASSES,
              RUNTIMECLASSES, *RBAC_KINDS, CERTIFICATESIGNINGREQUESTS)


def groups() -> list[tuple[str, str]]:
    """(group, version) pairs served under /apis, in discovery order."""
    seen: list[tuple[str, str]] = []
    for r in RESOURCES:
        if r.group and (r.group, r.version) not in seen:
            seen.append((r.group, r.version))
    return seen


def for_group_version(group: str, version: str) -> list[ResourceInfo]:
    return [r for r in RESOURCES if r.group == group and r.version == version]


def lookup(group: str, version: str, plural: str) -> ResourceInfo | None:
    """Exact lookup by URL parts."""
    for r in RESOURCES:
        if r.group == group and r.version == version and r.plural == plural:
            return r
    return None


def resolve(name: str) -> ResourceInfo:
    """Find a kind as a user or client names it: plural, singular, short name, Kind,
    or qualified (``jobs.batch``, ``job.batch/v1``, ``events.events.k8s.io``).

    Raises ``KeyError`` when nothing matches.
    """
    raw = name.strip()
    lowered = raw.lower()
    base, _, group = lowered.partition(".")
    if "/" in group:
        group = group.split("/", 1)[0]
    candidates = [r for r in RESOURCES if r.group == group] if group else list(_PREFERRED)
    for r in candidates:
        if base in (r.plural, r.singular, r.kind.lower()) or base in r.short_names:
            return r
    raise KeyError(name)


def for_kind(api_version: str, kind: str) -> ResourceInfo:
    """Find a kind by ``apiVersion`` + ``kind`` (as in a manifest). Raises ``KeyError``."""
    for r in RESOURCES:
        if r.api_version == api_version and r.kind == kind and not r.read_only:
            return r
    raise KeyError(f"{api_version}/{kind}")
