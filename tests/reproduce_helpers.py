"""What the tests of the reproduction commands share: running a command in a subprocess, and loading a result
file through the experiment's own schema and cost checks."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def run_command(experiment: str, *args, cwd, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m minilib.reproduce <experiment> args...``, which must exit 0 (its output is shown if not)."""
    proc = subprocess.run([sys.executable, "-m", "minilib.reproduce", experiment, *args], cwd=cwd, check=False,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def load_checked(path: Path, check_schema, check_cost) -> dict:
    """The result in ``path`` after ``check_schema(result, path)`` and ``check_cost(result)``."""
    result = json.loads(Path(path).read_text())
    check_schema(result, path)
    check_cost(result)
    return result
