"""The `customvid` command. Each subcommand group lives in its own module with a `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import sys

from customvid.errors import CustomvidError

# Modules that add subcommands; order sets the order in --help.
COMMAND_MODULES = [
    "world", "generate", "refine", "train", "train_subject", "train_motion", "train_zeroshot", "evaluate", "bench",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="customvid",
        description="Customize text-to-video diffusion models; measured on a procedural toy world.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"customvid.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"customvid.cli.{name}":
                continue  # subcommand group not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CustomvidError as err:
        print(f"customvid: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("customvid: interrupted", file=sys.stderr)
        return 130
