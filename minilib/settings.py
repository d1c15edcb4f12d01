"""Run-time switches read from the environment."""
import os


def quick_mode() -> bool:
    """True when ``MINILIB_QUICK`` is set to a true value (``1``, ``true``, ``yes``).

    Quick mode makes notebooks use small subsets and few steps so that each runs in well
    under a minute; the test suite turns it on by default.
    """
    return os.environ.get("MINILIB_QUICK", "").strip().lower() in {"1", "true", "yes", "on"}
