"""REST API settings (DRF, django-filter, drf-spectacular); rates and page sizes from the environment."""
import environ

env = environ.Env()

REST_FRAMEWORK = {
    # Token first: an anonymous request gets 401 with ``WWW-Authenticate: Token`` (not a bare 403).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.api.authentication.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.accounts.permissions.IsViewer"],
    "DEFAULT_VERSIONING_CLASS": "rest_framework.versioning.NamespaceVersioning",
    "DEFAULT_VERSION": "v1",
    "ALLOWED_VERSIONS": ["v1"],
    "DEFAULT_PAGINATION_CLASS": "apps.api.pagination.LimitOffset",
    "PAGE_SIZE": env.int("GOGO_API_PAGE_SIZE", default=50),
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": ["apps.api.throttling.AnonRate", "apps.api.throttling.UserRate"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("GOGO_API_ANON_RATE", default="120/min"),
        "user": env("GOGO_API_USER_RATE", default="6000/min"),
    },
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["apps.api.renderers.OrjsonRenderer", "rest_framework.renderers.BrowsableAPIRenderer"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "gogo API",
    "DESCRIPTION": "Market data, COB frames, inference history, checkpoints, trading (accounts, decisions, orders, "
    "fills, positions), risk, annotations, backtests, control actions and the audit log of gogo. "
    "Authenticate with `Authorization: Token <key>` (POST /api/v1/auth/token/) or a session. "
    "Roles: viewers read; traders also act on their own accounts (risk limits, kill switch, credentials), "
    "annotate and start backtests; admins configure and read the audit log. Per-user rows (accounts and "
    "everything under them) are the owner's only: another user's id is a 404. Annotations are readable by "
    "all and writable by their author. Control actions are POST /control/<what>/ and are audited.",
    "VERSION": "1.0.0",
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI's JS/CSS from drf-spectacular-sidecar: no CDN is reachable (see docs/GOTCHAS).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a "status" with different choices: name each set after its model.
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "apps.trading.models.Order.Status",
        "BacktestStatusEnum": "apps.backtest.models.BacktestRun.Status",
        "PredictionStatusEnum": "apps.predictions.models.Prediction.Status",
    },
}

# Seconds a token (with its user and role) stays cached per server process (apps.api.authentication);
# a revoked token or changed role takes effect within this time. 0: look it up on every request.
GOGO_API_TOKEN_CACHE_S = env.float("GOGO_API_TOKEN_CACHE_S", default=10.0)

# Seconds a candles list page stays in the hot cache (Redis; shared by every user: public market data)
# before it is read from the database again; the newest page may lag the stream by this much. 0: off.
GOGO_API_CANDLES_CACHE_S = env.float("GOGO_API_CANDLES_CACHE_S", default=1.0)

# /api/v1/ready/: a stream the user wants running is stale after this many seconds without a message (0: off).
GOGO_READY_STREAM_MAX_AGE_S = env.float("GOGO_READY_STREAM_MAX_AGE_S", default=30.0)
