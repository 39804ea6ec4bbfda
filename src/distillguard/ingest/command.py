"""Placeholder: replaced by the ingest implementation."""


def ingest_command() -> None:
    """Store exchange logs in a DuckDB file."""
    raise NotImplementedError
