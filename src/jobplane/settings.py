"""Server settings. Every flag has a ``JOBPLANE_<NAME>`` environment twin. Defaults are
upstream's unless the comment on a field says why not (the Job controller's batch period)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path


def default_data_dir() -> Path:
    env = os.environ.get("JOBPLANE_DATA_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "jobplane"


@dataclass
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: int = 6443
    # "sqlite" (file DIR/state.db) or a postgresql:// URL
    database: str = "sqlite"
    agent: bool = True
    # --processes: 1 (the default) runs everything in one asyncio process; 2 runs the node
    # agent and its per-pod file work in a child process of its own (as upstream's kubelet is
    # apart from kube-apiserver). 1 is the default because on the 2-core machines measured the
    # split cost 11-12 % of short-pod throughput and ~70 MiB (bench/RESULTS.md §15): serving
    # the child over HTTP costs the server about what the in-process agent did.
    processes: int = 1
    node_name: str = ""  # default: the host name
    # Run each container in a bubblewrap sandbox (pods fall back to plain host processes
    # when bwrap cannot run here).
    sandbox: bool = True
    # --runtime: how the agent runs containers. "host" (processes on this machine, the
    # default), "podman" or "docker" (from their images, through that engine's CLI), "auto"
    # (podman if it works, then docker, else host).
    runtime: str = "host"
    # --runtime-dir: where the agent keeps its pods' runtime files (volume contents, tokens,
    # /etc/hosts, the supervisor's run state) as kubelet keeps them on tmpfs. "" picks
    # $XDG_RUNTIME_DIR, /run (root) or /dev/shm, whichever is tmpfs; "off": the data dir.
    runtime_dir: str = ""
    # --allow-privileged: image containers with securityContext.privileged may run (they get
    # the engine's --privileged); refused otherwise.
    allow_privileged: bool = False
    # Job pod re-creation back-off: base and cap in seconds (documentation: 10 s doubling, 6 min cap).
    pod_backoff_base: float = 10.0
    pod_backoff_max: float = 360.0
    # Job controller batching of pod events (upstream syncJobBatchPeriod is 1 s). 50 ms still
    # coalesces a burst of pod events into one sync, but lets a parallelism-50 job replace
    # finished pods hundreds of times per second instead of once per second.
    job_sync_batch_period: float = 0.05
    log_level: str = "info"
    # --pki-dir: CA, server certificate and token (default DIR/pki). Servers sharing one
    # PostgreSQL store must share them, so kubeconfigs and agents work against any of them.
    pki_path: str = ""
    # --event-ttl (kube-apiserver): Events are deleted this many seconds after their last
    # timestamp (default 1 h).
    event_ttl: float = 3600.0
    # --terminated-pod-gc-threshold (kube-controller-manager): the PodGC controller deletes the
    # oldest Succeeded/Failed pods beyond this many (<= 0 disables it).
    terminated_pod_gc_threshold: int = 12500
    # Store history kept for watch resumption and list continue tokens: at most this many
    # revisions and this many bytes of change JSON, whichever is smaller (then 410 Gone).
    # Connections (kube-apiserver's http.Server: ReadHeaderTimeout 32 s, IdleTimeout 90 s,
    # --request-timeout 1 m). A connection must send a complete request within
    # request_header_timeout of being accepted (TLS handshake included); an idle keep-alive
    # connection closes after idle_timeout; a request body must arrive within request_timeout.
    request_header_timeout: float = 32.0
    idle_timeout: float = 90.0
    request_timeout: float = 60.0
    # Connections that have not yet sent valid credentials: beyond this many (and never more
    # than half the process's file descriptors) the oldest is closed.
    max_unauthenticated_connections: int = 512
    # --token-auth-file (kube-apiserver): static bearer tokens, CSV token,user,uid,"g1,g2".
    token_auth_file: str = ""
    # --authorization-mode: "Node,RBAC" (upstream's kubeadm default) or "AlwaysAllow"
    # (every authenticated caller may do everything: jobplane before RBAC, and benchmarks).
    authorization_mode: str = "Node,RBAC"
    # --audit-log-path / --audit-policy-file (kube-apiserver): audit.k8s.io/v1 Events as JSON
    # lines (no path: no audit log); without a policy file every request is logged at Metadata.
    audit_log_path: str = ""
    audit_policy_file: str = ""
    # --audit-log-maxsize (MB) / --audit-log-maxbackup / --audit-log-maxage (days): rotation,
    # 0 = unlimited (upstream's defaults)
    audit_log_maxsize: int = 0
    audit_log_maxbackup: int = 0
    audit_log_maxage: int = 0
    store_history: int = 100_000
    store_history_bytes: int = 64 * 2**20
    # --history-retention / --history-max-bytes: records and logs of finished Jobs (DIR/history/)
    # are kept this many seconds (default 7 days), oldest pruned first beyond this many bytes.
    history_retention: float = 7 * 86400.0
    history_max_bytes: int = 2**30
    # --service-cluster-ip-range (kube-apiserver): where Service cluster IPs come from; the
    # first address is the ``kubernetes`` Service's. kubeadm's and kind's default.
    service_cidr: str = "10.96.0.0/12"

    def apply_env(self) -> Settings:
        """Fill fields from JOBPLANE_* environment variables (flags given explicitly win later)."""
        for f in fields(self):
            raw = os.environ.get("JOBPLANE_" + f.name.upper())
            if raw is None:
                continue
            current = getattr(self, f.name)
            if isinstance(current, bool):
                setattr(self, f.name, raw.lower() in ("1", "true", "yes", "on"))
            elif isinstance(current, int):
                setattr(self, f.name, int(raw))
            elif isinstance(current, float):
                setattr(self, f.name, float(raw))
            elif isinstance(current, Path):
                setattr(self, f.name, Path(raw))
            else:
                setattr(self, f.name, raw)
        return self

    @property
    def db_path(self) -> Path:
        return self.data_dir / "state.db"

    @property
    def pki_dir(self) -> Path:
        return Path(self.pki_path) if self.pki_path else self.data_dir / "pki"

    @property
    def shared_store(self) -> bool:
        """Several servers may use this database at once (so they elect a controller leader)."""
        return self.database.startswith(("postgresql://", "postgres://"))

    @property
    def kubeconfig_path(self) -> Path:
        return self.data_dir / "kubeconfig"

    @property
    def pods_dir(self) -> Path:
        return self.data_dir / "pods"
