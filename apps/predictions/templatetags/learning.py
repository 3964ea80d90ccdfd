"""Template tag for the dashboard's learning panel (templates/dashboard/_learning.html)."""
from __future__ import annotations

import logging

from django import template

logger = logging.getLogger(__name__)
register = template.Library()


@register.simple_tag
def role_at_least(user, role: str) -> bool:
    """Whether ``user`` holds ``role`` ("viewer", "trader", "admin") or a higher one."""
    from apps.accounts.roles import role_at_least as held

    return bool(getattr(user, "is_authenticated", False) and held(user, role))  # no user in the context: no


@register.simple_tag
def checkpoint_panel() -> list[dict]:
    """The checkpoints panel's rows (apps.predictions.selectors.checkpoint_panel)."""
    from apps.predictions.selectors import checkpoint_panel as panel

    return panel()


@register.simple_tag
def learning_panel(user=None) -> dict:
    """The learning summary (apps.predictions.metrics.learning_summary) plus each model's last
    training progress (cache), as rows ready to render: {"horizons", "rows": [{"model", "cells":
    [{"horizon", "accuracy", "baseline", "n"}]}], "alerts", "training": [{"model", "state", "kind",
    "epoch", "total", "metric", "fraction", "message"}], "until", "can_train"}. ``message``: the
    last run's reason (a skip says how many cases it needs) or the running one's progress message."""
    from apps.predictions.learning import training_progress_get
    from apps.predictions.metrics import learning_summary
    from ml.models.specs import MODEL_NAMES

    summary = learning_summary()
    rows = []
    for model in MODEL_NAMES:
        cells = []
        for horizon in summary["horizons"]:
            m = summary["models"].get(model, {}).get(horizon)
            cells.append({"horizon": horizon, "n": m["n"] if m else 0,
                          "accuracy": None if not m else round(100 * m["accuracy"], 1),
                          "baseline": None if not m else round(100 * m["baseline_hold"], 1)})
        rows.append({"model": model, "cells": cells})
    training = []
    for model in MODEL_NAMES:
        progress = training_progress_get(model_name=model) or {}
        run = summary["runs"].get(model) or {}
        current = not run or progress.get("run") in (None, run.get("id"))  # progress of the last run (or older)
        state = (progress.get("state") if current else None) or run.get("state") or "—"
        message = run.get("reason") or "" if run and state == run.get("state") else progress.get("message") or ""
        training.append({"model": model, "state": state,
                         "kind": progress.get("kind") or run.get("kind") or "",
                         "epoch": progress.get("epoch"), "total": progress.get("total"),
                         "metric": progress.get("metric", run.get("candidate")),
                         "fraction": round(100 * (progress.get("fraction") or 0)), "message": message})
    return {"horizons": summary["horizons"], "rows": rows, "alerts": summary["alerts"], "training": training,
            "until": summary["until"], "hours": summary["hours"], "can_train": role_at_least(user, "trader")}
