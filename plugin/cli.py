"""The `jsm-mail` command line."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from plugin.inspect import inspect_file


def cmd_inspect(args: argparse.Namespace) -> int:
    for name in args.files:
        result = inspect_file(Path(name))
        if args.json:
            print(json.dumps(result, ensure_ascii=False), flush=True)
        else:
            print(f"{name}: {result['kind']}  {result['subject']!r}  from={result['from']}  reason={result['reason']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jsm-mail", description="Email channel for Jira Service Management")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inspect", help="what the product understands of each .eml")
    p.add_argument("files", nargs="+")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_inspect)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
