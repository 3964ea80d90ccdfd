"""Celery tasks. Thin: take ids and primitives, call one service, own the retry policy."""
