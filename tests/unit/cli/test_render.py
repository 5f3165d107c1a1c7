"""`handsoff render SPEC`: the resolved pipeline as a tree, errors in the validate format."""

from __future__ import annotations

import json

from support.cli import run, spec


def test_render_prints_the_resolved_tree(capsys, specs_dir):
    document = spec(
        "orders",
        build={
            "steps": [{"name": "compile", "command": "make"}, {"name": "lint", "command": "make lint"}],
            "coverage": {"command": "make coverage", "min_percent": 82.5},
            "artifact": "dist/orders.zip",
        },
        stages=[
            {
                "name": "beta",
                "waves": [{"name": "beta", "targets": [{"name": "beta", "region": "us-west-2"}]}],
                "tests": [
                    {"name": "integration", "command": "make integ", "shards": 4},
                    {"name": "smoke", "command": "s"},
                ],
                "bake": "90m",
            },
            {
                "name": "prod",
                "waves": [
                    {
                        "name": "one",
                        "targets": [{"name": "use1", "region": "us-east-1"}, {"name": "edge"}],
                        "bake": "1h",
                    }
                ],
            },
        ],
    )
    path = specs_dir / "orders.json"
    path.write_text(json.dumps(document))

    code, out, err = run(capsys, "render", str(path))

    assert (code, err) == (0, "")
    assert out == (
        "orders  (source /srv/git/app.git@main)\n"
        "├── build: compile → lint, coverage ≥ 82.5%, artifact dist/orders.zip\n"
        "├── stage beta\n"
        "│   ├── wave beta\n"
        "│   │   └── target beta (us-west-2) deploy=command\n"
        "│   ├── tests: integration ×4 shards, smoke\n"
        "│   └── bake 1h30m\n"
        "└── stage prod\n"
        "    └── wave one\n"
        "        ├── target use1 (us-east-1) deploy=command\n"
        "        ├── target edge deploy=command\n"
        "        └── bake 1h\n"
    )


def test_render_errors_use_the_validate_format(capsys, specs_dir):
    path = specs_dir / "orders.json"
    path.write_text(json.dumps(spec("orders", stages=[])))

    assert run(capsys, "render", str(path)) == (1, f"{path}: $.stages: [] should be non-empty\n", "")


def test_render_a_missing_file_is_a_usage_error(capsys, tmp_path):
    code, _, err = run(capsys, "render", str(tmp_path / "nope.json"))

    assert (code, err) == (2, f"handsoff render: error: no such file or folder: {tmp_path / 'nope.json'}\n")
