"""greeter: the tiny example service that the handsoff demo deploys."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_CONFIG = {"greeting": "Hello", "punctuation": "!"}


def load_config(path: str | None = None) -> dict[str, str]:
    """Default settings, overridden by the JSON file at `path` when one is given."""
    config = dict(DEFAULT_CONFIG)
    if path:
        config.update(json.loads(Path(path).read_text(encoding="utf-8")))
    return config


def greet(name: str, config: dict[str, str] | None = None) -> str:
    """The greeting for `name`, e.g. "Hello, Ada!"."""
    config = config or DEFAULT_CONFIG
    name = name.strip() or "world"
    return f"{config['greeting']}, {name}{config['punctuation']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="greeter", description="Print a greeting.")
    parser.add_argument("name", nargs="?", default="world")
    parser.add_argument("--config", help="JSON file with 'greeting' and 'punctuation'")
    args = parser.parse_args(argv)
    print(greet(args.name, load_config(args.config)))
    return 0


def handler(event: dict | None, context: object = None) -> dict[str, str]:
    """AWS Lambda entry point (greeter-lambda): {"name": "Ada"} gives {"greeting": "Hello, Ada!"}."""
    return {"greeting": greet(str((event or {}).get("name", "world")))}


if __name__ == "__main__":
    sys.exit(main())
