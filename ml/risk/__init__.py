"""Pure risk core: pre-trade limits and trading states, stops, position sizing, circuit breakers,
and portfolio metrics (drawdown, VaR, Sharpe, Sortino). No Django; floats in USD and base units."""
