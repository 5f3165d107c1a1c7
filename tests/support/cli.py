"""Running the `handsoff` command in-process, and a minimal spec for it."""

from __future__ import annotations

from handsoff.cli import main

DEPLOY = {"type": "command", "deploy": "./deploy.sh", "rollback": "./rollback.sh"}


def spec(pipeline_id: str, **overrides) -> dict:
    """A valid pipeline that extends templates/base.json (the `specs_dir` fixture writes it)."""
    return {
        "pipeline": pipeline_id,
        "extends": ["templates/base.json"],
        "build": {"artifact": "dist/app.zip"},
        "stages": [{"name": "prod", "waves": [{"name": "all", "targets": [{"name": f"{pipeline_id}-t"}]}]}],
        **overrides,
    }


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """`handsoff ARGV…`: (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
