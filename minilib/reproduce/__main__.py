"""``python -m minilib.reproduce EXPERIMENT [options]``: one subcommand per module of :data:`EXPERIMENTS`.

An experiment module provides ``HELP`` (one line), ``add_arguments(parser)`` and ``main(args) -> exit code``;
its docstring is the subcommand's ``--help`` text.
"""
from __future__ import annotations

import argparse
import sys

from . import cifar10, compare, compare_timing, mnist, sr

EXPERIMENTS = {"mnist": mnist, "cifar10": cifar10, "sr": sr, "compare": compare,
               "compare-timing": compare_timing}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minilib.reproduce",
                                     description="Reproduce the papers' experiments; one JSON per run under results/.")
    commands = parser.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    for name, module in EXPERIMENTS.items():
        module.add_arguments(commands.add_parser(name, help=module.HELP, description=module.__doc__,
                                                 formatter_class=argparse.RawDescriptionHelpFormatter))
    args = parser.parse_args(argv)
    return EXPERIMENTS[args.experiment].main(args)


if __name__ == "__main__":
    sys.exit(main())
