"""Test-only Django app: a faster ``flush`` for transactional tests (see management/commands/flush.py)."""
