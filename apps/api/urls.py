"""``/api/v1/``: included from gogo.urls under the namespace "v1" (NamespaceVersioning)."""
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from apps.api.views import auth, health, market, predictions

router = DefaultRouter()
router.register("instruments", market.InstrumentViewSet, basename="instrument")
router.register("candles", market.CandleViewSet, basename="candle")
router.register("cob-frames", market.CobFrameViewSet, basename="cob-frame")
router.register("data-gaps", market.DataGapViewSet, basename="data-gap")
router.register("streams", market.MarketStreamViewSet, basename="stream")
router.register("predictions", predictions.PredictionViewSet, basename="prediction")
router.register("checkpoints", predictions.CheckpointViewSet, basename="checkpoint")
# Trading (accounts, decisions, orders, fills, positions), risk, annotations and backtests register
# here when their models settle, with apps.api.mixins.OwnedQuerysetMixin for per-user rows.

urlpatterns = [
    path("health/", health.HealthView.as_view(), name="health"),
    path("ready/", health.ReadyView.as_view(), name="ready"),
    path("auth/token/", auth.TokenView.as_view(), name="auth-token"),
    path("heatmap/", market.HeatmapView.as_view(), name="heatmap"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="v1:schema"), name="docs"),
    path("", include(router.urls)),
]
