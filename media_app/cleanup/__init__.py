"""The cleanup sweep; ``run_cleanup`` is its one entry point."""

from .engine import run_cleanup, summary
from .result import CleanupResult

__all__ = ["CleanupResult", "run_cleanup", "summary"]
