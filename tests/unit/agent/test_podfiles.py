"""When a worker may skip reading records (worker.records_possible)."""

import pytest

from jobplane.agent.worker import records_possible


@pytest.mark.parametrize(("uid", "at_start", "completed", "unreported", "want"), [
    ("u1", None, set(), set(), True),  # the directories were not listed: read, as always
    ("u1", {"u1"}, set(), set(), True),  # its directory was there when the agent started
    ("u1", {"u2"}, set(), set(), False),  # a pod first seen by this agent: nothing to read
    ("u1", set(), {"u1"}, set(), True),  # a worker of this agent finished it
    ("u1", set(), set(), {"u1"}, True),  # a worker of this agent ended without a final status (crashed)
    ("u1", set(), {"u2"}, {"u3"}, False),
])
def test_records_possible(uid, at_start, completed, unreported, want):
    assert records_possible(uid, at_start, completed, unreported) is want
