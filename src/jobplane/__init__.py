"""jobplane: Kubernetes batch Jobs without a cluster."""

__version__ = "0.1.0"
