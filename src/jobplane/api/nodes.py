"""Node heartbeats: where node Leases live and how long one lasts (kubelet's defaults).
The agent renews them; the node lifecycle controller and the scheduler read them."""

from __future__ import annotations

LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40  # kubelet's nodeLeaseDurationSeconds
