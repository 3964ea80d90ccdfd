"""The start-a-backtest form: source, window and, for a walk-forward, bounded folds, epochs and
window length (a run of 50 folds x 200 epochs would hold a worker for days)."""
from __future__ import annotations

import logging

from django import forms

from apps.backtest.models import BacktestRun

logger = logging.getLogger(__name__)

DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]
MAX_FOLDS, MAX_EPOCHS, MAX_WINDOW_DAYS = 12, 20, 30.0
WALK_FORWARD_FIELDS = ("folds", "model", "epochs", "window_days")


class BacktestForm(forms.Form):
    """Validated input of ``apps.backtest.services.backtest_create``; times are UTC (``TIME_ZONE``)."""

    wf_fields = WALK_FORWARD_FIELDS  # shown only for a walk-forward (templates/backtest/list.html)

    name = forms.CharField(max_length=128, required=False)
    source = forms.ChoiceField(choices=BacktestRun.Source.choices, initial=BacktestRun.Source.ORDERBOOK)
    start = forms.DateTimeField(required=False, input_formats=DATETIME_FORMATS, label="Start (UTC)",
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": 1}))
    end = forms.DateTimeField(required=False, input_formats=DATETIME_FORMATS, label="End (UTC)",
                              widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": 1}))
    folds = forms.IntegerField(required=False, min_value=1, max_value=MAX_FOLDS, initial=3,
                               help_text=f"1 to {MAX_FOLDS}")
    model = forms.ChoiceField(required=False, choices=[("cnn", "CNN"), ("dqn", "DQN")], initial="cnn")
    epochs = forms.IntegerField(required=False, min_value=1, max_value=MAX_EPOCHS, initial=2,
                                help_text=f"1 to {MAX_EPOCHS} per fold")
    window_days = forms.FloatField(required=False, min_value=0.25, max_value=MAX_WINDOW_DAYS, initial=1.0,
                                   label="Window (days)", help_text=f"0.25 to {MAX_WINDOW_DAYS:g} days per fold")

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
