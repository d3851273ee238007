"""xAPI data model (1.0.3 and 2.0.0) as strict pydantic v2 models.

The single entry point for validation is :mod:`schemas.validate`; nothing here
imports from ``lrs`` or ``ingest``.
"""
