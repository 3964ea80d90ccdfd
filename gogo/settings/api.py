"""REST API settings (DRF, django-filter, drf-spectacular); rates and page sizes from the environment."""
import environ

env = environ.Env()

REST_FRAMEWORK = {
    # Token first: an anonymous request gets 401 with ``WWW-Authenticate: Token`` (not a bare 403).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
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
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer", "rest_framework.renderers.BrowsableAPIRenderer"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "gogo API",
    "DESCRIPTION": "Market data, COB frames, inference history, checkpoints and controls of gogo. "
    "Authenticate with `Authorization: Token <key>` (POST /api/v1/auth/token/) or a session.",
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
}

# /api/v1/ready/: a stream the user wants running is stale after this many seconds without a message (0: off).
GOGO_READY_STREAM_MAX_AGE_S = env.float("GOGO_READY_STREAM_MAX_AGE_S", default=30.0)
