"""Thin service wiring: the only code that imports faust or aiokafka.

``app`` (faust app, topics, tables) -> ``agents`` (decode, call the core, encode, send) ->
``topics`` (creating source topics, which faust does not do) -> ``worker`` (running it).
"""
