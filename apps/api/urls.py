"""``/api/v1/``: included from gogo.urls under the namespace "v1" (NamespaceVersioning)."""
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from apps.api.views import annotations, auth, backtests, control, health, market, predictions, risk, trading

router = DefaultRouter()
router.register("instruments", market.InstrumentViewSet, basename="instrument")
router.register("candles", market.CandleViewSet, basename="candle")
router.register("cob-frames", market.CobFrameViewSet, basename="cob-frame")
router.register("data-gaps", market.DataGapViewSet, basename="data-gap")
router.register("streams", market.MarketStreamViewSet, basename="stream")
router.register("predictions", predictions.PredictionViewSet, basename="prediction")
router.register("checkpoints", predictions.CheckpointViewSet, basename="checkpoint")
router.register("training-runs", predictions.TrainingRunViewSet, basename="training-run")
# Per-user rows (apps.api.mixins.OwnedQuerysetMixin): another user's row is a 404.
router.register("accounts", trading.TradingAccountViewSet, basename="account")
router.register("decisions", trading.DecisionViewSet, basename="decision")
router.register("orders", trading.OrderViewSet, basename="order")
router.register("order-events", trading.OrderEventViewSet, basename="order-event")
router.register("fills", trading.FillViewSet, basename="fill")
router.register("positions", trading.PositionViewSet, basename="position")
router.register("risk-limits", risk.RiskLimitViewSet, basename="risk-limit")
router.register("risk-states", risk.RiskStateViewSet, basename="risk-state")
router.register("risk-events", risk.RiskEventViewSet, basename="risk-event")
router.register("annotations", annotations.AnnotationViewSet, basename="annotation")  # read all, write own
router.register("backtests", backtests.BacktestViewSet, basename="backtest")
router.register("audit", control.AuditLogViewSet, basename="audit")  # admins only

urlpatterns = [
    path("health/", health.HealthView.as_view(), name="health"),
    path("ready/", health.ReadyView.as_view(), name="ready"),
    path("auth/token/", auth.TokenView.as_view(), name="auth-token"),
    path("heatmap/", market.HeatmapView.as_view(), name="heatmap"),
    path("control/streams/", control.StreamControlView.as_view(), name="control-streams"),
    path("control/trading/", control.TradingControlView.as_view(), name="control-trading"),
    path("control/orchestrator/", control.OrchestratorControlView.as_view(), name="control-orchestrator"),
    path("control/models/", control.ModelControlView.as_view(), name="control-models"),
    path("control/kill-switch/", control.KillSwitchControlView.as_view(), name="control-kill-switch"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="v1:schema"), name="docs"),
    path("", include(router.urls)),
]
