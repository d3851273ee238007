"""Persistence: the eventsourcing recorders, extended with a statement index in the same transaction.

``index.py`` holds what both databases share; ``sqlite.py`` and ``postgres.py`` hold one recorder
each, as the eventsourcing library does for its own recorders.
"""
