"""Fine-grained work queue: each pod takes items until the queue is empty, then exits 0.
The Job has no completions: it is complete once one pod succeeded and all have ended."""

import os
import sys
import time

queue = sys.argv[1]
me = os.environ.get("POD_NAME", "?")
taken = 0
while True:
    names = sorted(os.listdir(os.path.join(queue, "todo")))
    if not names:
        break
    for name in names:
        try:
            os.rename(os.path.join(queue, "todo", name), os.path.join(queue, "done", name))
        except FileNotFoundError:
            continue
        with open(os.path.join(queue, "done", name)) as f:
            print(f"{me} processed {f.read().strip()}", flush=True)
        taken += 1
        time.sleep(0.05)
        break
print(f"{me}: queue empty after {taken} items")
