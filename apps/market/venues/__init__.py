"""Venues served on loopback (the Binance replay venue: ``replay_server``)."""
