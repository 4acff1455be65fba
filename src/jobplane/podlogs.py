"""Container log files: the format shared by the agent (writer) and the API server's
``log`` subresource (reader).

Layout: ``<data_dir>/pods/<pod-uid>/logs/<container>/<restartCount>.log`` in the CRI
format kubelet uses, one line per output line:

    2024-01-02T03:04:05.123456789Z stdout F the line's text

(``P`` instead of ``F`` for a partial line). When the container process has exited and
all its output is written, the agent creates ``<restartCount>.done`` beside the log, so a
``follow`` reader knows to stop at EOF.
"""

from __future__ import annotations

from pathlib import Path


def container_log_dir(pods_dir: Path, pod_uid: str, container: str) -> Path:
    return pods_dir / pod_uid / "logs" / container


def log_path(pods_dir: Path, pod_uid: str, container: str, restart_count: int) -> Path:
    return container_log_dir(pods_dir, pod_uid, container) / f"{restart_count}.log"


def done_marker(pods_dir: Path, pod_uid: str, container: str, restart_count: int) -> Path:
    return container_log_dir(pods_dir, pod_uid, container) / f"{restart_count}.done"
