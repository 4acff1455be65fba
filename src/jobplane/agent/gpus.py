"""GPU discovery (``nvidia-smi -L``) and assignment of GPU indices to containers."""

from __future__ import annotations

import re
import shutil
import subprocess


def detect_gpus() -> int:
    """Number of GPUs ``nvidia-smi -L`` lists (0 without the tool or a driver)."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return 0
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return len(re.findall(r"^GPU \d+:", out, flags=re.MULTILINE))


class GpuAllocator:
    """Hands out GPU indices so concurrent containers get disjoint ``CUDA_VISIBLE_DEVICES``."""

    def __init__(self, total: int) -> None:
        self.total = total
        self._free = list(range(total))

    def acquire(self, count: int) -> list[int] | None:
        if count > len(self._free):
            return None
        ids, self._free = self._free[:count], self._free[count:]
        return ids

    def release(self, ids: list[int]) -> None:
        self._free = sorted(set(self._free) | set(ids))
