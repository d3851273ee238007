"""Read models in DuckDB, each a pure function of the event log, rebuildable at any time.

``facts.py`` turns statement events into rows; ``mastery.py``, ``engagement.py`` and
``profile.py`` compute a learner's rows from that learner's facts; ``runner.py`` applies the
log in pages, each page and its new position in one DuckDB transaction.
"""
