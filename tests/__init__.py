"""The suite's own tests (run from a checkout)."""

from pathlib import Path

#: The checkout's root directory.
ROOT = Path(__file__).resolve().parent.parent
