"""The engine's stages, composed by :class:`apps.pipeline.engine.Engine` (docs/architecture.md, "The engine").

- :mod:`.market`: one venue's market step (order books via ``ml.market.session``, rings, roll-ups,
  gaps and their backfill, counters);
- :mod:`.inputs`: the BaseDataInput of a second from the market step's rings;
- :mod:`.inference`: every enabled model in-process, or on the ``inference`` queue;
- :mod:`.trading`: the trading desk (``apps.trading.desk``) for every open account;
- :mod:`.storage`: where the market rows and the decisions go (database or buffered);
- :mod:`.dashboard`: the per-second update the dashboard reads, and the run summary.

Drivers (live streams, replay, backtests) use these through the engine's public attributes and
methods only; nothing outside ``apps.pipeline`` reads an underscore attribute of them
(tests/apps/pipeline/test_public_api.py).
"""
