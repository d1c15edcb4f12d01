"""Root pytest configuration: quick mode by default, and make `minilib` importable from
notebook kernels even without `pip install -e .` (kernels do not see pytest's paths)."""
import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent
os.environ.setdefault("MINILIB_QUICK", "1")
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
