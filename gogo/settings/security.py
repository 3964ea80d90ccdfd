"""Security settings: HTTPS, HSTS, cookies, secret key and login attempt limiting, all from the environment.

``DJANGO_DEBUG=false`` (production) turns on HTTPS redirect, HSTS (with subdomains and preload),
secure session/CSRF cookies and demands ``DJANGO_SECRET_KEY``; then
``python manage.py check --deploy`` reports no warning (tests/apps/accounts/test_deploy_check.py).
Each flag can still be set on its own (e.g. ``DJANGO_SECURE_SSL_REDIRECT=false`` behind a proxy
that already redirects).
"""
import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()
_production = not env.bool("DJANGO_DEBUG", default=True)

if _production and len(env("DJANGO_SECRET_KEY", default="")) < 50:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set (50+ random characters) when DJANGO_DEBUG is false")

SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=_production)
# The ASGI server sits behind a TLS-terminating proxy that sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool(
    "DJANGO_SECURE_PROXY_SSL_HEADER", default=_production) else None
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31_536_000 if _production else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=_production)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=_production)
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=_production)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=_production)
SESSION_COOKIE_HTTPONLY = True
# /health/ and /ready/ are polled over plain HTTP by load balancers inside the network.
SECURE_REDIRECT_EXEMPT = [r"^api/v1/(health|ready)/$"]

# Login attempt limiting (django-axes): after AXES_FAILURE_LIMIT failures for one username from one
# IP address, that pair is locked for AXES_COOLOFF_TIME hours (web login, admin and API token).
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_TIME", default=0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_IPWARE_PROXY_COUNT = env.int("AXES_IPWARE_PROXY_COUNT", default=1 if _production else 0)
