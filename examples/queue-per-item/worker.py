"""Takes exactly one work item from a directory queue and processes it (coarse-grained
work queue: one pod per item). The queue is a directory of files; taking an item is an
atomic rename, so two pods never get the same one."""

import os
import sys

queue = sys.argv[1]
for name in sorted(os.listdir(os.path.join(queue, "todo"))):
    src = os.path.join(queue, "todo", name)
    dst = os.path.join(queue, "done", name)
    try:
        os.rename(src, dst)
    except FileNotFoundError:
        continue  # another pod took it first
    with open(dst) as f:
        print(f"{os.environ.get('POD_NAME', '?')} processed {f.read().strip()}")
    sys.exit(0)
print("queue empty")
sys.exit(1)
