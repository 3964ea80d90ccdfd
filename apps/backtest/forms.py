"""The start-a-backtest form: source, window and, for a walk-forward, the engine's parameters within
its bounds (``apps.backtest.walk_forward.BOUNDS``: a run of 50 folds x 200 epochs would hold a
worker for days)."""
from __future__ import annotations

import logging

from django import forms

from apps.backtest.models import BacktestRun
from apps.backtest.walk_forward import BOUNDS, DEFAULTS, MODELS

logger = logging.getLogger(__name__)

DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]
WALK_FORWARD_FIELDS = ("folds", "model", "epochs", "window_days", "scheme", "trade_horizon_min", "margin_bps",
                       "search_trials", "preset")
MODEL_LABELS = {"all": "all (cnn → transformer → dqn)", "cnn": "CNN", "transformer": "Transformer", "dqn": "DQN"}


def _bounded(kind: type[forms.Field], name: str, label: str, unit: str = "", **kwargs) -> forms.Field:
    lo, hi = BOUNDS[name]
    return kind(required=False, min_value=lo, max_value=hi, initial=DEFAULTS[name], label=label,
                help_text=f"{lo:g} to {hi:g}{unit}", **kwargs)


class BacktestForm(forms.Form):
    """Validated input of ``apps.backtest.services.backtest_create``; times are UTC (``TIME_ZONE``)."""

    wf_fields = WALK_FORWARD_FIELDS  # shown only for a walk-forward (templates/backtest/list.html)

    name = forms.CharField(max_length=128, required=False)
    source = forms.ChoiceField(choices=BacktestRun.Source.choices, initial=BacktestRun.Source.ORDERBOOK)
    start = forms.DateTimeField(required=False, input_formats=DATETIME_FORMATS, label="Start (UTC)",
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": 1}))
    end = forms.DateTimeField(required=False, input_formats=DATETIME_FORMATS, label="End (UTC)",
                              widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": 1}))
    folds = _bounded(forms.IntegerField, "folds", "Folds")
    model = forms.ChoiceField(required=False, choices=[(m, MODEL_LABELS.get(m, m)) for m in MODELS],
                              initial=DEFAULTS["model"])
    epochs = _bounded(forms.IntegerField, "epochs", "Epochs", " per fold")
    window_days = _bounded(forms.FloatField, "window_days", "Window (days)", " days per fold, when no start is given")
    scheme = forms.ChoiceField(required=False, choices=[("expanding", "expanding"), ("rolling", "rolling")],
                               initial=DEFAULTS["scheme"])
    trade_horizon_min = forms.TypedChoiceField(required=False, coerce=int, label="Trade horizon (min)",
                                               choices=[(m, m) for m in (1, 5, 15, 60)],
                                               initial=DEFAULTS["trade_horizon_min"])
    margin_bps = _bounded(forms.FloatField, "margin_bps", "Margin (bps)", " bps of edge over costs")
    search_trials = _bounded(forms.IntegerField, "search_trials", "Search trials", " Optuna trials (0: no search)")
    preset = forms.ChoiceField(required=False, choices=[("", "as set here"), ("best", "best of the last search")],
                               label="Configuration")
    def clean(self) -> dict:
        data = super().clean()
        if data.get("source") != BacktestRun.Source.WALK_FORWARD:
            for name in WALK_FORWARD_FIELDS:  # hidden for other sources: a stale value there is not theirs to refuse
                self._errors.pop(name, None)
        start, end = data.get("start"), data.get("end")
        if start and end and start >= end:
            self.add_error("end", "must be after the start")
        return data

    def params(self) -> dict:
        """The run's ``params``: the walk-forward fields given, for a walk-forward only."""
        if self.cleaned_data["source"] != BacktestRun.Source.WALK_FORWARD:
            return {}
        return {k: self.cleaned_data[k] for k in WALK_FORWARD_FIELDS if self.cleaned_data.get(k) not in (None, "")}
