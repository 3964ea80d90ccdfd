from ml.orchestrator import decide

BASE = {"buy_threshold": 0.6, "sell_threshold": 0.7, "now_ms": 100_000, "last_order_ms": None, "cooldown_ms": 30_000}


def test_it_buys_when_buy_confidence_reaches_the_threshold():
    result = decide(model_action="BUY", confidence=0.6, **BASE)
    assert (result.action, result.threshold) == ("BUY", 0.6)


def test_it_holds_when_sell_confidence_is_below_the_sell_threshold():
    result = decide(model_action="SELL", confidence=0.69, **BASE)
    assert result.action == "HOLD"
    assert "0.690 < 0.700" in result.reason


def test_it_holds_during_the_cooldown_after_an_order():
    result = decide(model_action="BUY", confidence=0.9, **{**BASE, "last_order_ms": 90_000})
    assert result.action == "HOLD"
    assert result.reason == "cooldown: 20 s left"


def test_it_holds_when_the_model_says_hold():
    assert decide(model_action="HOLD", confidence=0.99, **BASE).action == "HOLD"
