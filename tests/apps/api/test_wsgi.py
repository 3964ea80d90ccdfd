"""The production HTTP server (granian on ``gogo.wsgi``, docker-compose.yml's ``http`` service,
started by ``bench.api.live_server``) serves the REST API and the pages from the test database."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token

from apps.market.models import Instrument
from bench.api import PRODUCTION_SERVER, PROXY_HEADERS, live_server
from tests.apps.api.conftest import _user_with_role, database_url


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect is the answer under test, not followed


_opener = urllib.request.build_opener(_NoRedirect)


def _get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a GET, redirects not followed."""
    try:
        with _opener.open(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


@pytest.mark.django_db(transaction=True)
def test_the_wsgi_server_serves_the_api_and_the_login_page(pipeline_ready, tmp_path):
    assert PRODUCTION_SERVER == "granian"
    token = Token.objects.create(user=_user_with_role("viewer")).key
    eth = Instrument.objects.get(venue=Instrument.Venue.BINANCE, symbol="ETHUSDT")
    authorized = {"Authorization": f"Token {token}", **PROXY_HEADERS}
    with open(tmp_path / "server.log", "w") as log, \
            live_server(database=database_url(settings.DATABASES["default"]), redis=settings.REDIS_URL, log=log) as base:
        health = _get(f"{base}/api/v1/health/", PROXY_HEADERS)
        candles = _get(f"{base}/api/v1/candles/?instrument={eth.pk}&timeframe=1m&limit=50", authorized)
        anonymous = _get(f"{base}/api/v1/candles/?instrument={eth.pk}&timeframe=1m&limit=50", PROXY_HEADERS)
        login = _get(f"{base}/accounts/login/", PROXY_HEADERS)
        insecure = _get(f"{base}/accounts/login/", {})
    assert (health[0], json.loads(health[2])) == (200, {"status": "ok"}), (tmp_path / "server.log").read_text()
    rows = json.loads(candles[2])["results"]
    assert candles[0] == 200 and len(rows) == 50 and {r["instrument"] for r in rows} == {eth.pk}
    assert json.loads(candles[2])["next"].startswith("https://")  # the scheme from X-Forwarded-Proto
    assert anonymous[0] == 401
    assert login[0] == 200 and b'name="csrfmiddlewaretoken"' in login[2] and b'name="password"' in login[2]
    assert insecure[0] == 301 and insecure[1]["location"].startswith("https://")  # DEBUG off: HTTPS only


def test_the_compose_file_routes_websockets_to_asgi_and_the_rest_to_wsgi():
    """docker-compose.yml parses, every gogo service's program is installed, and the proxy's upstreams
    are the ports the ASGI (``web``) and WSGI (``http``) servers listen on (no engine here to run
    ``docker compose config``)."""
    import re
    import shlex
    import shutil
    import sys
    from pathlib import Path

    import yaml

    from bench.api import ROOT

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        command = service.get("command")
        if command is None:
            continue
        words = shlex.split(command) if isinstance(command, str) else command
        if words[:2] == ["sh", "-c"]:
            words = shlex.split(words[2].split("&&")[-1])
        program = words[0]
        assert program == "python" or shutil.which(program, path=str(Path(sys.executable).parent)), (name, program)
    web, http = services["web"]["command"], services["http"]["command"]
    assert "gogo.asgi:application" in web and "--lifespan on" in web and "--port 8000" in web
    assert "--interface wsgi gogo.wsgi:application" in http and "--port 8001" in http
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    assert re.search(r"handle /ws/\* \{\s*reverse_proxy web:8000\s*\}", caddyfile)
    assert re.search(r"handle \{\s*reverse_proxy http:8001\s*\}", caddyfile)
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in services["proxy"]["volumes"]
