"""Base settings. Every value comes from the environment (django-environ) with a working default.

With no environment set, gogo runs embedded: SQLite, Celery tasks executed in-process, in-memory
channel layer, local-memory cache. Setting ``DATABASE_URL`` / ``REDIS_URL`` /
``CELERY_BROKER_URL`` switches to Postgres, Redis and separate Celery workers; same code.
"""
from pathlib import Path

import environ
import plotly
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# The fallback key only serves the embedded local default; production must set DJANGO_SECRET_KEY.
SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-local-only-key-set-DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list(
    "DJANGO_CSRF_TRUSTED_ORIGINS", default=["http://127.0.0.1:8000", "http://localhost:8000"]
)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "channels",
    "django_celery_beat",
    "django_plotly_dash.apps.DjangoPlotlyDashConfig",
    "apps.market",
    "apps.predictions",
    "apps.annotations",
    "apps.trading",
    "apps.risk",
    "apps.pipeline",
    "apps.dashboard",
    "apps.accounts",
    "apps.api",
    "apps.backtest",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_plotly_dash.middleware.BaseMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "gogo.urls"
ASGI_APPLICATION = "gogo.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'gogo.sqlite3'}")}
DATABASES["default"].setdefault("CONN_MAX_AGE", 0)
# Under ASGI every request runs its sync code on a new thread, so persistent connections (CONN_MAX_AGE)
# leak one connection per request; a psycopg pool per process reuses them instead (production).
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool("DJANGO_DB_POOL", default=False):
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 2, "max_size": env.int("DJANGO_DB_POOL_MAX_SIZE", default=10), "timeout": 10}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default writes from the pipeline thread while the web reads.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="")
EMBEDDED = not REDIS_URL

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # socket_timeout None: redis-py's default 5 s equals channels_redis's 5 s blocking read,
            # which kills idle websockets with TimeoutError (redis/redis-py#4091).
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": None}], "capacity": 1000, "expiry": 10},
        }
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: with no broker configured, tasks run in-process (eager).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=None)
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "workers.ingest.*": {"queue": "ingest"},
    "workers.inference.*": {"queue": "inference"},
    "workers.training.*": {"queue": "training"},
}
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
if CELERY_BROKER_URL and not CELERY_RESULT_BACKEND:
    # The engine waits for the inference queue's outputs each second.
    CELERY_RESULT_BACKEND = CELERY_BROKER_URL
CELERY_RESULT_EXPIRES = 3600
# Workers mode: every enabled model runs on the ``inference`` queue each second (default when a
# broker is configured); embedded: in the session's own process.
GOGO_INFERENCE_IN_WORKER = env.bool("GOGO_INFERENCE_IN_WORKER", default=bool(CELERY_BROKER_URL))
GOGO_INFERENCE_TIMEOUT = env.float("GOGO_INFERENCE_TIMEOUT", default=5.0)
CELERY_TIMEZONE = "UTC"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
# plotly.min.js from the plotly package itself: no CDN is reachable (or wanted).
STATICFILES_DIRS = [BASE_DIR / "static", ("vendor/plotly", Path(plotly.__file__).parent / "package_data")]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "django_plotly_dash.finders.DashAssetFinder",
    "django_plotly_dash.finders.DashComponentFinder",
    "django_plotly_dash.finders.DashAppDirectoryFinder",
]
# Production serves what `manage.py collectstatic` gathered in STATIC_ROOT: whitenoise's start-up scan of the
# finders crashes on django_plotly_dash's finder (``list(None)``), and a scan per start is slow anyway.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# django-plotly-dash: serve Dash's JS locally (no CDN reachable); see docs/GOTCHAS.
PLOTLY_DASH = {"serve_locally": True}
PLOTLY_COMPONENTS = ["dpd_components"]
# No page embeds a Dash app in an iframe; one that does needs @xframe_options_sameorigin on its view.
X_FRAME_OPTIONS = "DENY"

# REST_FRAMEWORK / SPECTACULAR_SETTINGS: gogo/settings/api.py; HTTPS, cookies, axes: gogo/settings/security.py.

# gogo
_shared_data = BASE_DIR.parent / "shared" / "data"
GOGO_DATA_DIR = Path(env("GOGO_DATA_DIR", default=str(_shared_data)))
GOGO_VAR_DIR = Path(env("GOGO_VAR_DIR", default=str(BASE_DIR / "var")))
GOGO_CHECKPOINT_DIR = Path(env("GOGO_CHECKPOINT_DIR", default=str(GOGO_VAR_DIR / "checkpoints")))
# Full quoted spread (bps) the evaluation lab charges where no recorded book gives it (candle history).
GOGO_EVAL_SPREAD_BPS = env.float("GOGO_EVAL_SPREAD_BPS", default=1.0)
# Minimum BaseDataInput completeness below which no inference runs.
GOGO_MIN_COMPLETENESS = env.float("GOGO_MIN_COMPLETENESS", default=0.8)
# What starts with the web server (make run sets "streams"): "streams" = the live market streams of
# the default instruments (from the venue endpoints below: the replay venue on loopback unless set
# to a real exchange), "replay" = the in-process replay of the recorded session, "" / "0" = nothing.
GOGO_AUTOSTART = {"1": "streams", "true": "streams", "0": "", "false": ""}.get(
    env("GOGO_AUTOSTART", default="").lower(), env("GOGO_AUTOSTART", default="").lower())
if GOGO_AUTOSTART not in ("", "streams", "replay"):
    raise ImproperlyConfigured(f"GOGO_AUTOSTART must be streams, replay or 0, got {GOGO_AUTOSTART!r}")
GOGO_REPLAY_SPEED = env("GOGO_REPLAY_SPEED", default="1")
# Training epochs for the first-start CNN (tests lower it).
GOGO_CNN_EPOCHS = env.int("GOGO_CNN_EPOCHS", default=0)
# First-start DQN episodes and transformer epochs (0: the model's default; tests lower them).
GOGO_DQN_EPISODES = env.int("GOGO_DQN_EPISODES", default=0)
GOGO_TRANSFORMER_EPOCHS = env.int("GOGO_TRANSFORMER_EPOCHS", default=0)
# Training samples of the model families (ml.training.market_data): one candle-history sample every
# GOGO_TRAIN_STRIDE_MIN minutes (all the 1m history: ~175k minutes; the tests raise it to 60), at
# most GOGO_TRAIN_MAX_SAMPLES of them drawn per epoch (0: all).
GOGO_TRAIN_STRIDE_MIN = env.int("GOGO_TRAIN_STRIDE_MIN", default=5)
GOGO_TRAIN_MAX_SAMPLES = env.int("GOGO_TRAIN_MAX_SAMPLES", default=40_000)
# Learning-loop alerts (apps.predictions.alerts): e-mail recipients (comma-separated) and a webhook
# that receives a JSON POST per alert; empty = stored and shown in the dashboard only.
GOGO_ALERT_EMAILS = env.list("GOGO_ALERT_EMAILS", default=[])
GOGO_ALERT_WEBHOOK_URL = env("GOGO_ALERT_WEBHOOK_URL", default="")
GOGO_ALERT_WEBHOOK_TIMEOUT_S = env.float("GOGO_ALERT_WEBHOOK_TIMEOUT_S", default=5.0)
# Torch threads for batch-1 inference in the engine (1 keeps p99 low when the cores are shared).
GOGO_INFERENCE_THREADS = env.int("GOGO_INFERENCE_THREADS", default=1)

# Venue endpoints of the live market streams (apps.market.venues.live.LiveVenue) and REST backfills.
# Default: the replay venue on loopback (`python -m apps.market.venues.replay_server --port 9443`),
# which speaks Binance's protocol. To go live set the official ones: GOGO_BINANCE_REST_URL=https://api.binance.com,
# GOGO_BINANCE_WS_URL=wss://stream.binance.com:9443 (USD-M: https://fapi.binance.com, wss://fstream.binance.com).
GOGO_BINANCE_REST_URL = env("GOGO_BINANCE_REST_URL", default="http://127.0.0.1:9443")
GOGO_BINANCE_WS_URL = env("GOGO_BINANCE_WS_URL", default="ws://127.0.0.1:9443")
GOGO_BINANCEUSDM_REST_URL = env("GOGO_BINANCEUSDM_REST_URL", default="http://127.0.0.1:9443")
GOGO_BINANCEUSDM_WS_URL = env("GOGO_BINANCEUSDM_WS_URL", default="ws://127.0.0.1:9443")
# Bybit spot and MEXC spot (apps.market.venues.ccxt_pro.CcxtProVenue, ccxt / ccxt.pro): scheme + host, ccxt keeps
# the paths (/v5/public/spot, /ws). There is no replay venue for them: the defaults are the official public
# endpoints, so an enabled bybit / mexc Instrument streams from the real venue (tests use a loopback stand-in).
GOGO_BYBIT_REST_URL = env("GOGO_BYBIT_REST_URL", default="https://api.bybit.com")
GOGO_BYBIT_WS_URL = env("GOGO_BYBIT_WS_URL", default="wss://stream.bybit.com")
GOGO_MEXC_REST_URL = env("GOGO_MEXC_REST_URL", default="https://api.mexc.com")
GOGO_MEXC_WS_URL = env("GOGO_MEXC_WS_URL", default="wss://wbs-api.mexc.com")
# Reconnect backoff (full jitter) base and cap, connection rotation age and dead-connection timeout, seconds.
GOGO_STREAM_BACKOFF_BASE_S = env.float("GOGO_STREAM_BACKOFF_BASE_S", default=0.5)
GOGO_STREAM_BACKOFF_CAP_S = env.float("GOGO_STREAM_BACKOFF_CAP_S", default=30.0)
GOGO_STREAM_MAX_AGE_S = env.float("GOGO_STREAM_MAX_AGE_S", default=23 * 3600.0)
GOGO_STREAM_IDLE_TIMEOUT_S = env.float("GOGO_STREAM_IDLE_TIMEOUT_S", default=10.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
