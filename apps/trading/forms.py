"""The orchestrator's live settings as a form (dashboard control panel; the admin uses the model)."""
from __future__ import annotations

from django import forms

from apps.trading.models import MARGIN_BPS_MAX, MARGIN_BPS_MIN, OrchestratorConfig


class OrchestratorControlForm(forms.ModelForm):
    """Margin (bps), cooldown, order size, market filters and mixture weights; validated by the model."""

    class Meta:
        model = OrchestratorConfig
        fields = ("margin_bps", "cooldown_seconds", "order_notional", "max_spread_bps",
                  "max_volatility", "min_completeness", "gating_mode", "manual_weights")

    def clean_manual_weights(self) -> dict:
        weights = self.cleaned_data.get("manual_weights") or {}
        if not isinstance(weights, dict) or any(not isinstance(v, int | float) or v < 0 for v in weights.values()):
            raise forms.ValidationError('expected {"model": weight >= 0, ...}')
        return weights

    def clean(self) -> dict:
        data = super().clean()
        value = data.get("margin_bps")
        if value is not None and not MARGIN_BPS_MIN <= value <= MARGIN_BPS_MAX:
            self.add_error("margin_bps", f"must be between {MARGIN_BPS_MIN:g} and {MARGIN_BPS_MAX:g} bps")
        return data
