from ml.orchestrator import decide

BASE = {"buy_threshold": 0.4, "sell_threshold": 0.5, "now_ms": 100_000, "last_order_ms": None, "cooldown_ms": 30_000}


def test_it_buys_when_buy_confidence_reaches_the_threshold_even_if_hold_is_likelier():
    result = decide(probs={"BUY": 0.4, "SELL": 0.1, "HOLD": 0.5}, **BASE)
    assert (result.action, result.confidence, result.threshold) == ("BUY", 0.4, 0.4)


def test_it_holds_when_sell_confidence_is_below_the_sell_threshold():
    result = decide(probs={"BUY": 0.1, "SELL": 0.49, "HOLD": 0.41}, **BASE)
    assert result.action == "HOLD"
    assert result.reason == "SELL confidence 0.490 < 0.500"


def test_it_sells_on_the_likelier_side():
    assert decide(probs={"BUY": 0.3, "SELL": 0.6, "HOLD": 0.1}, **BASE).action == "SELL"


def test_it_holds_during_the_cooldown_after_an_order():
    result = decide(probs={"BUY": 0.9, "SELL": 0.05, "HOLD": 0.05}, **{**BASE, "last_order_ms": 90_000})
    assert result.action == "HOLD"
    assert result.reason == "cooldown: 20 s left"


def test_a_model_with_no_opinion_holds():
    assert decide(probs={"BUY": 1 / 3, "SELL": 1 / 3, "HOLD": 1 / 3}, **BASE).action == "HOLD"
