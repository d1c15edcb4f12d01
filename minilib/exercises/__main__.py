"""``python -m minilib.exercises check NAME [--target stub|reference]`` and ``python -m minilib.exercises list``."""
from __future__ import annotations

import argparse
import sys

from .check import check
from .registry import EXERCISES, TARGETS, lookup


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minilib.exercises",
                                     description="Check your solution of one of the book's coding exercises.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("list", help="the exercises, their chapters and the files to fill in")
    checker = commands.add_parser("check", help="run one exercise's checks and print a verdict")
    checker.add_argument("name", metavar="NAME", nargs="?", default="", help=f"one of: {', '.join(EXERCISES)}")
    checker.add_argument("--target", choices=TARGETS, default="stub",
                         help="check your stub (default) or the library's own implementation")
    args = parser.parse_args(argv)
    if args.command == "list":
        for exercise in EXERCISES.values():
            print(f"{exercise.name:18} chapter {exercise.chapter}   {exercise.stub_file}")
        return 0
    try:
        lookup(args.name)
    except ValueError as error:
        print(f"error: {error}\nusage: make check-exercise NAME=<exercise>", file=sys.stderr)
        return 2
    return 0 if check(args.name, args.target) else 1


if __name__ == "__main__":
    sys.exit(main())
