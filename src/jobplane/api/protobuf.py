"""Decoder for Kubernetes protobuf request bodies (``application/vnd.kubernetes.protobuf``),
driven by the shipped field map. kubectl's ``create job|cronjob|namespace`` send these."""

from __future__ import annotations

from typing import Any


def decode(data: bytes) -> dict[str, Any]:
    """``k8s\\0`` + runtime.Unknown -> the object as JSON-style dict (zero values dropped,
    as Go's omitempty would), with ``apiVersion`` and ``kind`` set."""
    raise NotImplementedError
