"""Job controller, split by concern as upstream does."""
