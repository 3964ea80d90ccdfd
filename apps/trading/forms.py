"""The orchestrator's live settings as a form (dashboard control panel; the admin uses the model)."""
from __future__ import annotations

from django import forms

from apps.trading.models import OrchestratorConfig


class OrchestratorControlForm(forms.ModelForm):
    """Thresholds, cooldown, order size, market filters and mixture weights; validated by the model."""

    class Meta:
        model = OrchestratorConfig
        fields = ("buy_threshold", "sell_threshold", "cooldown_seconds", "order_notional", "max_spread_bps",
                  "max_volatility", "min_completeness", "gating_mode", "manual_weights")

    def clean_manual_weights(self) -> dict:
        weights = self.cleaned_data.get("manual_weights") or {}
        if not isinstance(weights, dict) or any(not isinstance(v, int | float) or v < 0 for v in weights.values()):
            raise forms.ValidationError('expected {"model": weight >= 0, ...}')
        return weights

    def clean(self) -> dict:
        data = super().clean()
        for name in ("buy_threshold", "sell_threshold"):
            value = data.get(name)
            if value is not None and not 0 <= value <= 1:
                self.add_error(name, "must be between 0 and 1")
        return data
