"""Runs one shard of the integration tests, as handsoff asks for it.

Shard i of n runs every n-th file of tests/integ/test_*.py (sorted), starting at file i
(HANDSOFF_SHARD_INDEX, counted from 0). When the shard passes, one line
"STAGE TEST i/n COMMIT" is appended to $GREETER_FLEET_DIR/$HANDSOFF_PIPELINE/shards.log.
"""

from __future__ import annotations

import os
import sys
import unittest
from pathlib import Path


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        sys.exit(f"integ: {name} is not set")
    return value


def shard_files(index: int, total: int) -> list[Path]:
    if not 0 <= index < total:
        sys.exit(f"integ: shard index {index} is not in 0..{total - 1}")
    return sorted(Path("tests/integ").glob("test_*.py"))[index::total]


def run(files: list[Path]) -> bool:
    suite = unittest.TestSuite()
    for path in files:
        suite.addTests(unittest.defaultTestLoader.discover(str(path.parent), pattern=path.name))
    return unittest.TextTestRunner(verbosity=2).run(suite).wasSuccessful()


def main() -> int:
    if not os.environ.get("GREETER_FLEET_DIR"):
        sys.exit("integ: GREETER_FLEET_DIR is not set: the folder that stands for the fleet")
    log = Path(os.environ["GREETER_FLEET_DIR"], env("HANDSOFF_PIPELINE"), "shards.log")
    index, total = int(env("HANDSOFF_SHARD_INDEX", "0")), int(env("HANDSOFF_SHARD_TOTAL", "1"))
    line = f"{env('HANDSOFF_STAGE')} {env('HANDSOFF_TEST')} {index}/{total} {env('HANDSOFF_COMMIT')}"
    files = shard_files(index, total)
    print(f"integ: shard {index}/{total} runs {[p.name for p in files]}")
    if not run(files):
        return 1
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as out:
        out.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
