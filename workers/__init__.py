"""Celery tasks. Thin: take ids and primitives, call one service, own the retry policy.

Queues come from ``CELERY_TASK_ROUTES`` by module (``workers.ingest.*`` -> ingest,
``workers.inference.*`` -> inference, ``workers.training.*`` -> training, the rest -> default);
Celery 5 deprecates the per-task ``queue=`` attribute."""
