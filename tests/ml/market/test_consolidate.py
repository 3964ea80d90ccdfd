"""Consolidation of two real venues: Binance spot and USD-M ETHUSDT over the same minutes."""
from __future__ import annotations

import numpy as np
import pytest

from ml.market.consolidate import NoFreshVenue, consolidate
from ml.market.replay import ReplayVenue
from ml.market.session import InstrumentSpec, MarketSession
from tests.ml.market.recorded import HAND_CHECKED_SECOND


@pytest.fixture(scope="module")
def perp_frames(data_dir) -> dict[int, object]:
    venue = ReplayVenue({"ETHUSDT": [data_dir / "orderbook/binance_usdm/ethusdt_20240808.gz"]})
    session = MarketSession(venue, [InstrumentSpec("ETHUSDT", 1.0, 20, "futures")])
    return {r.ts: r.frames["ETHUSDT"] for r in session.seconds() if "ETHUSDT" in r.frames}


def _by_key(frame) -> dict[int, tuple[float, float]]:
    first = round(frame.first_bucket_price / frame.bucket_width)
    return {first + i: (frame.bid_usd[i], frame.ask_usd[i]) for i in range(len(frame.bid_usd))}


def test_two_venues_are_summed_per_price_bucket_with_each_venues_share(spot_run, perp_frames):
    # the first second after the hand-checked one where the two grids differ (perp ~1 USD lower)
    spot = next(f for f in spot_run.frames["ETHUSDT"] if f.ts >= HAND_CHECKED_SECOND and f.ts in perp_frames
                and f.first_bucket_price != perp_frames[f.ts].first_bucket_price)
    ts, perp = spot.ts, perp_frames[spot.ts]

    out = consolidate({"binance": spot, "binanceusdm": perp}, now_ms=ts)

    frame = out.frame
    assert out.venues == ("binance", "binanceusdm") and out.stale_venues == ()
    assert frame.mid == pytest.approx((spot.mid + perp.mid) / 2)
    assert frame.first_bucket_price == (np.floor(frame.mid) - 20) * 1.0
    s, p = _by_key(spot), _by_key(perp)
    first = round(frame.first_bucket_price)
    for i in range(41):
        key = first + i
        want_bid = s.get(key, (0.0, 0.0))[0] + p.get(key, (0.0, 0.0))[0]
        want_ask = s.get(key, (0.0, 0.0))[1] + p.get(key, (0.0, 0.0))[1]
        assert frame.bid_usd[i] == pytest.approx(want_bid, rel=1e-12)
        assert frame.ask_usd[i] == pytest.approx(want_ask, rel=1e-12)
        assert out.coverage[i] == (key in s) + (key in p)
    total = out.venue_share["binance"] + out.venue_share["binanceusdm"]
    assert np.allclose(total[frame.bid_usd + frame.ask_usd > 0], 1.0)
    assert out.venue_depth_share["binance"] + out.venue_depth_share["binanceusdm"] == pytest.approx(1.0)
    assert 0.0 < out.venue_depth_share["binanceusdm"] < 1.0
    assert frame.best_bid == max(spot.best_bid, perp.best_bid)


def test_a_stale_venue_is_dropped_and_named(spot_run, perp_frames):
    last_perp = perp_frames[max(perp_frames)]
    spot = spot_run.frames["ETHUSDT"][-1]  # ~5 minutes after the perp recording ends

    out = consolidate({"binance": spot, "binanceusdm": last_perp}, now_ms=spot.ts)

    assert out.venues == ("binance",) and out.stale_venues == ("binanceusdm",)
    assert out.ages_ms["binanceusdm"] == spot.ts - last_perp.ts > 3000
    assert np.array_equal(out.frame.bid_usd, spot.bid_usd) and np.array_equal(out.frame.ask_usd, spot.ask_usd)
    assert out.venue_depth_share == {"binance": 1.0}


def test_nothing_fresh_or_mixed_grids_are_refused(spot_run, perp_frames):
    spot = spot_run.frames["ETHUSDT"][0]
    with pytest.raises(NoFreshVenue):
        consolidate({"binance": spot}, now_ms=spot.ts + 60_000)
    with pytest.raises(ValueError, match="share symbol, bucket width"):
        consolidate({"binance": spot, "other": spot_run.frames["BTCUSDT"][0]}, now_ms=spot.ts)
