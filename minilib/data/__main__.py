"""Command line: ``python -m minilib.data {list, download NAME, verify [NAME]} [--root DIR]``.

Exit status: 0 on success, 1 if a file is missing or corrupt or a download fails, 2 for usage errors (argparse).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .download import download
from .readers import FileCheck, verify_dataset
from .registry import (
    DATASETS,
    ENV_VAR,
    DatasetIntegrityError,
    DatasetNotFoundError,
    DownloadError,
    DownloadUnavailableError,
    get_spec,
    resolve_root,
)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m minilib.data",
        description=f"Manage minilib datasets. Data root: --root, else ${ENV_VAR}, else ./data.")
    sub = parser.add_subparsers(dest="command", required=True)
    root_help = f"data root (default: ${ENV_VAR}, else ./data)"
    p_list = sub.add_parser("list", help="list registered datasets and whether their files are present")
    p_list.add_argument("--root", help=root_help)
    p_dl = sub.add_parser("download", help="download a dataset that has a public source (mnist, fashion-mnist)")
    p_dl.add_argument("name", help=", ".join(n for n, s in DATASETS.items() if s.downloadable))
    p_dl.add_argument("--root", help=root_help)
    p_ver = sub.add_parser("verify", help="check SHA-256 of a dataset's files (all present datasets if no NAME)")
    p_ver.add_argument("name", nargs="?", help=", ".join(DATASETS))
    p_ver.add_argument("--root", help=root_help)
    return parser


def _cmd_list(root) -> int:
    root_path = resolve_root(root)
    print(f"data root: {root_path}")
    print(f"{'name':<14} {'files':>5}  {'present':<9} download  note")
    for spec in DATASETS.values():
        n_present = sum((root_path / fs.relpath).is_file() for fs in spec.files.values())
        present = "all" if n_present == len(spec.files) else f"{n_present}/{len(spec.files)}"
        how = "yes" if spec.downloadable else "no"
        print(f"{spec.name:<14} {len(spec.files):>5}  {present:<9} {how:<9} {spec.note}")
    print("(presence only; run `python -m minilib.data verify` to check contents)")
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
        if not name and not any((root_path / fs.relpath).is_file() for fs in spec.files.values()):
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
    try:
        if args.command == "list":
            return _cmd_list(root)
        if args.command == "download":
            return _cmd_download(args.name, root)
        return _cmd_verify(args.name, root)
    except (DatasetNotFoundError, DatasetIntegrityError, DownloadError, DownloadUnavailableError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
