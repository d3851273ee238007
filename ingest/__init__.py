"""Ways statements come in: every entry point ends in :func:`ingest.pipeline.accept_statements`."""
