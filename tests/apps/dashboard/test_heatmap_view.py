"""The heatmap endpoint serves ml.market.heatmap over the stored COB frames."""
from itertools import islice

import pytest
from django.contrib.auth import get_user_model

from apps.pipeline.engine import Engine
from apps.pipeline.runner import default_recordings

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored_frames():
    engine = Engine(recordings=default_recordings(), accounts=[])
    list(islice(engine.run(), 40))
    engine.flush()
    return engine


@pytest.fixture
def client_logged_in(client):
    client.force_login(get_user_model().objects.create_user("heat"))
    return client


def test_it_returns_time_by_price_matrices_of_the_newest_frames(stored_frames, client_logged_in):
    response = client_logged_in.get("/dashboard/heatmap/", {"symbol": "ETHUSDT", "seconds": 30, "buckets": 10})
    assert response.status_code == 200
    body = response.json()
    assert len(body["ts"]) == 30 and len(body["price"]) == 21
    assert len(body["imbalance"]) == 30 and all(len(row) == 21 for row in body["imbalance"])
    assert body["ts"][-1] == stored_frames.last_ts  # the newest stored second ends the window
    assert body["bucket_width"] == 1.0
    assert body["price"][1] - body["price"][0] == pytest.approx(1.0)
    values = [v for row in body["imbalance"] for v in row if v is not None]
    assert values and all(-1.0 <= v <= 1.0 for v in values)
    assert all(s is not None and s > 0 for s in body["spread"])


def test_a_bad_parameter_is_a_400_naming_it(client_logged_in):
    response = client_logged_in.get("/dashboard/heatmap/", {"seconds": "many"})
    assert response.status_code == 400
    assert response.json()["error"] == "seconds: expected an integer, got 'many'"


def test_anonymous_users_are_sent_to_the_login_page(client):
    response = client.get("/dashboard/heatmap/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
