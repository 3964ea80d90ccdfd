"""schemathesis against the live OpenAPI schema of the production server setup, as an admin (so
every write is exercised, every per-user row is visible and every control action allowed);
figures: generated requests and server errors (target 0).

The server gets a Fernet key (credentials can be stored) and a broker that nobody consumes
(``memory://``): a generated backtest is enqueued, not run inside the server."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from bench.api import PROXY_HEADERS, ROOT, live_server
from tests.apps.api.conftest import database_url

# Start/stop would open venue connections from the server (covered in test_market.py and
# test_control.py); readiness answers 503 with a broker that has no worker (covered in test_health.py).
EXCLUDE = r"(/streams/\{instrument\}/(start|stop)/|/control/streams/|/ready/)"
SERVER_ENV = {"CELERY_BROKER_URL": "memory://", "CELERY_RESULT_BACKEND": "cache+memory://"}
MAX_EXAMPLES = 10


@pytest.mark.django_db(transaction=True)
def test_schemathesis_finds_no_server_error(pipeline_ready, tmp_path):
    admin = get_user_model().objects.create_user("schemathesis", is_staff=True)
    token = Token.objects.create(user=admin).key
    redis = settings.REDIS_URL
    with open(tmp_path / "server.log", "w") as log, \
            live_server(database=database_url(settings.DATABASES["default"]), redis=redis, log=log,
                        extra_env={**SERVER_ENV, "GOGO_SECRETS_KEY": Fernet.generate_key().decode()}) as base:
        headers = [f"Authorization: Token {token}", *(f"{k}: {v}" for k, v in PROXY_HEADERS.items())]
        cmd = [str(Path(sys.executable).parent / "schemathesis"), "run", f"{base}/api/v1/schema/",
               "--checks", "not_a_server_error", "--max-examples", str(MAX_EXAMPLES), "--seed", "1",
               "--exclude-path-regex", EXCLUDE, "--no-color", "--generation-database", "none",
               *[arg for h in headers for arg in ("-H", h)]]
        result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    generated = re.search(r"(\d+) generated", output)
    failed = re.search(r"(\d+) failed", output)
    server_errors = len(re.findall(r"Server error", output))
    operations = re.search(r"(\d+) (?:selected|operations?)", output)
    print(f"schemathesis_operations: {operations.group(1) if operations else '?'}")
    print(f"schemathesis_requests: {generated.group(1) if generated else '?'}")
    print(f"schemathesis_server_errors: {server_errors} (failed cases: {failed.group(1) if failed else 0})")
    server_log = (tmp_path / "server.log").read_text()
    assert generated and int(generated.group(1)) > 1500, output[-3000:]
    assert result.returncode == 0 and server_errors == 0 and not failed, output[-5000:] + server_log[-3000:]
