"""Client tests use the shared in-memory stack (tests/unit/conftest.py)."""
