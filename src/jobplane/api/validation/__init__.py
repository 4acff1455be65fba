"""Validation of every served kind, with upstream's field paths and messages.

Each ``validate_*`` returns a list of ``FieldError`` in upstream's order; admission turns a
non-empty list into a 422 via ``errors.invalid_object``.
"""
