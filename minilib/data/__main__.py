"""Command line: ``python -m minilib.data {where, status [NAME], download NAME, verify [NAME]} [--root DIR]``.

Exit status: 0 on success, 1 if a file is missing or corrupt or a download fails (one line on stderr saying why),
2 for usage errors (argparse).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .fetch import download
from .loaders import FileCheck, verify_dataset
from .location import ENV_VAR, OFFLINE_VAR, offline, resolve_root, root_origin
from .registry import (
    DATASETS,
    DatasetIntegrityError,
    DatasetNotFoundError,
    DownloadError,
    DownloadUnavailableError,
    get_spec,
)
from .samples import SAMPLE_ROOT, SAMPLES


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m minilib.data",
        description=f"Manage minilib datasets. Data root: --root, else ${ENV_VAR}, else the per-user cache folder.")
    sub = parser.add_subparsers(dest="command", required=True)
    root_help = f"data root (default: ${ENV_VAR}, else the per-user cache folder)"
    p_where = sub.add_parser("where", help="print the data root in use and where that choice came from")
    p_status = sub.add_parser("status", help="list each dataset as present / missing / corrupt (checks contents)")
    p_status.add_argument("name", nargs="?", help=", ".join(DATASETS))
    p_dl = sub.add_parser("download", help="fetch a dataset from its public sources (loaders also do it on first use)")
    p_dl.add_argument("name", help=", ".join(n for n, s in DATASETS.items() if s.downloadable))
    p_ver = sub.add_parser("verify", help="check every file of a dataset (all present datasets if no NAME)")
    p_ver.add_argument("name", nargs="?", help=", ".join(DATASETS))
    for p in (p_where, p_status, p_dl, p_ver):
        p.add_argument("--root", help=root_help)
    return parser


def _cmd_where(root) -> int:
    print(resolve_root(root))
    print(f"({root_origin(root)}; fetching is {'off: ' + OFFLINE_VAR + ' is set' if offline() else 'on'}; "
          f"the embedded sample is in {SAMPLE_ROOT})", file=sys.stderr)
    return 0


def _status(checks: list[FileCheck]) -> str:
    counts = {status: sum(c.status == status for c in checks) for status in ("ok", "missing", "corrupt")}
    if counts["corrupt"]:
        return f"corrupt ({counts['corrupt']} of {len(checks)} files)"
    if counts["missing"] == len(checks):
        return "missing"
    if counts["missing"]:
        return f"missing {counts['missing']} of {len(checks)} files"
    return "present"


def _cmd_status(name, root) -> int:
    root_path = resolve_root(root)
    print(f"data root: {root_path} ({root_origin(root)})")
    names = [get_spec(name).name] if name else list(DATASETS)
    print(f"{'name':<14} {'status':<26} {'fetch':<6} note")
    for ds in names:
        spec = DATASETS[ds]
        state = _status(verify_dataset(ds, root))
        fetch = "yes" if spec.downloadable else "no"
        print(f"{ds:<14} {state:<26} {fetch:<6} {spec.note}")
    print(f"embedded sample ({SAMPLE_ROOT}): " + ", ".join(f"{n} ({s.note})" for n, s in SAMPLES.items()))
    return 0


def _cmd_download(name, root) -> int:
    results = download(name, root, log=print)
    for path, status in results.items():
        print(f"{status:>13}: {path}")
    print(f"{get_spec(name).title}: all {len(results)} files present and verified.")
    return 0


def _print_problem(check: FileCheck) -> None:
    if check.status != "ok":
        print(f"{check.status.upper()}: {check.message}", file=sys.stderr)


def _cmd_verify(name, root) -> int:
    root_path = resolve_root(root)
    names = [get_spec(name).name] if name else list(DATASETS)
    failed = False
    for ds in names:
        spec = DATASETS[ds]
        if not name and len(spec.missing_files(root_path)) == len(spec.files):
            print(f"{ds}: not present under {root_path}, skipped")
            continue
        checks = verify_dataset(ds, root, on_file=_print_problem)
        n_ok = sum(c.status == "ok" for c in checks)
        print(f"{ds}: {n_ok}/{len(checks)} files OK")
        if n_ok < len(checks):
            failed = True
            if spec.downloadable:  # with --root, the bare command would download elsewhere
                hint = spec.fix_command() + ("" if root is None else f" --root {root_path}")
            else:
                hint = spec.how_to_get_at(root_path)
            print(f"  to fix: {hint}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    root = None if args.root is None else Path(args.root)
    commands = {"where": lambda: _cmd_where(root), "status": lambda: _cmd_status(args.name, root),
                "download": lambda: _cmd_download(args.name, root), "verify": lambda: _cmd_verify(args.name, root)}
    try:
        return commands[args.command]()
    except (DatasetNotFoundError, DatasetIntegrityError, DownloadError, DownloadUnavailableError, ValueError,
            OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; nothing partial was left under a real name", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
