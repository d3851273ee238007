"""An event-sourced xAPI learning-record store."""

__version__ = "0.1.0"
