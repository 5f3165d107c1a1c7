"""Spec strings are literal: no Jinja is rendered in any command, name or value of a spec.

A whole pipeline under `dag.test()` (which renders every task's template fields as a worker does), with
Go-template braces in the deploy command, a `{{ ... }}` in a blocker alarm's name and a commit message that
would run a command if anything rendered `dag_run.conf`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.aws import put_alarms
from support.runs import task_states

PIPELINE = "orders-literal"
BLOCKER = "orders-{{ ds }}-sev2"  # a name, not a template: rendered it would name another alarm


def _spec(store: Path, repo: Path, folder: Path) -> dict:
    deploy = (
        "printf '%s\\n' '{{.Id}}' '{{ dag_run.conf[\"message\"] }}' \"$HANDSOFF_COMMIT\" "
        '> "$HANDSOFF_TARGET_DIR/raw"'
    )
    return {
        "pipeline": PIPELINE,
        "source": {"repo": str(repo), "branch": "main"},
        "artifacts": {"store": store.as_uri()},
        "build": {
            "steps": [{"name": "compile", "command": "make build && echo '{{ ti.xcom_pull() }}'"}],
            "artifact": "dist/greeter.zip",
        },
        "deploy": {"type": "command", "deploy": deploy, "rollback": "true"},
        "alarms": {"blockers": [{"name": BLOCKER, "region": "us-east-1"}], "poll": "1s"},
        "stages": [
            {
                "name": "prod",
                "waves": [{"name": "one", "targets": [{"name": "t1", "dir": str(folder)}]}],
                "tests": [{"name": "smoke", "command": "test '{{ run_id }}' = \"{{ run_id }}\""}],
            }
        ],
    }


@pytest.mark.slow
def test_braces_in_a_spec_reach_the_shell_and_aws_as_written(setup, tmp_path):
    from handsoff.factory.loader import load_dags

    specs, repo, store, aws = setup
    put_alarms(aws.client("cloudwatch", "us-east-1"), [BLOCKER], "OK")
    folder = tmp_path / "fleet" / "t1"
    folder.mkdir(parents=True)
    (specs / f"{PIPELINE}.json").write_text(json.dumps(_spec(store, repo.bare, folder), indent=2))
    commit = repo.commit("$(touch pwned)")

    run = load_dags(specs)[PIPELINE].test(run_conf={"commit": commit, "message": "$(touch pwned)"})

    assert run.state == "success", task_states(run)
    lines = (folder / "raw").read_text().splitlines()
    assert lines == ["{{.Id}}", '{{ dag_run.conf["message"] }}', commit]
    assert task_states(run)["prod.one.blockers"] == "success"  # it read the alarm named as written
