"""A whole pipeline run under `dag.test()`: real Airflow (SQLite), real git repo, real subprocesses."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

PIPELINE = "greeter-app"


def _run(dag, commit: str | None):
    conf = {"commit": commit} if commit else {}
    return dag.test(run_conf=conf)


def _load(specs: Path):
    from handsoff.factory.loader import load_dags

    return load_dags(specs)[PIPELINE]


def _ledger(store: Path, target: str) -> dict:
    return json.loads((store / PIPELINE / "ledger" / f"{target}.json").read_text())


def _wave_order(specs: Path) -> dict[str, int]:
    """target name → index of its wave in deployment order."""
    from handsoff.spec import load_pipeline

    pipeline = load_pipeline(specs / f"{PIPELINE}.json", specs)
    waves = [w for s in pipeline.stages for w in s.waves]
    return {t.name: i for i, w in enumerate(waves) for t in w.targets}


@pytest.mark.slow
def test_pipeline_builds_once_and_deploys_every_target_in_wave_order(airflow_db, example_specs):
    specs, repo, fleet = example_specs
    store = airflow_db / "handsoff" / "artifacts"
    first = repo.commit("first change")
    dag = _load(specs)

    run = _run(dag, first[:10])  # an abbreviated SHA resolves to the full one

    assert run.state == "success"
    # built once: one stored artifact for the commit, and every target got exactly those bytes
    stored = sorted(p.name for p in (store / PIPELINE / "artifacts").iterdir())
    assert stored == [first]
    manifest = json.loads((store / PIPELINE / "artifacts" / first / "manifest.json").read_text())
    order = _wave_order(specs)
    for target in order:
        deployed = fleet / PIPELINE / target
        assert (deployed / "VERSION").read_text().strip() == first
        assert hashlib.sha256((deployed / manifest["name"]).read_bytes()).hexdigest() == manifest["sha256"]
    # every target deployed once, in wave order
    deploys = [line.split() for line in (fleet / PIPELINE / "deploys.log").read_text().splitlines()]
    assert [d[0] for d in deploys] == ["deploy"] * len(order)
    assert sorted(d[1] for d in deploys) == sorted(order)
    waves = [order[d[1]] for d in deploys]
    assert waves == sorted(waves)
    # each shard ran once with its index
    shards = sorted(
        tuple(line.split()[:3]) for line in (fleet / PIPELINE / "shards.log").read_text().splitlines()
    )
    assert shards == sorted(
        [("alpha", "integration", f"{i}/3") for i in range(3)]
        + [("beta", "integration", f"{i}/2") for i in range(2)]
    )
    # bakes honoured: each lasted its 1s, and the next wave started only after it
    tis = _task_instances(run)
    for task_id, ti in tis.items():
        if task_id.endswith("bake"):
            assert (ti.end_date - ti.start_date).total_seconds() >= 1.0, task_id
            for down in dag.get_task(task_id).downstream_task_ids:
                assert tis[down].start_date >= ti.end_date, (task_id, down)
    # the ledger: every target runs the commit, deployed by this run, nothing before
    for target in order:
        record = _ledger(store, target)
        assert record["current"]["commit"] == first
        assert record["current"]["run_id"] == run.run_id
        assert record["previous"] is None

    # A second commit: the ledger's previous is the first commit; the first artifact is not rebuilt.
    second = repo.commit("second change")
    run2 = _run(dag, None)  # no commit in conf: the head of main
    assert run2.state == "success"
    assert sorted(p.name for p in (store / PIPELINE / "artifacts").iterdir()) == sorted([first, second])
    for target in order:
        record = _ledger(store, target)
        assert (record["current"]["commit"], record["previous"]["commit"]) == (second, first)
        assert (fleet / PIPELINE / target / "VERSION").read_text().strip() == second


def _task_instances(run) -> dict[str, object]:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=run.dag_id, run_id=run.run_id).all()
        session.expunge_all()
    return {(ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"): ti for ti in tis}


@pytest.mark.slow
def test_unknown_commit_fails_the_run_at_once_and_deploys_nothing(airflow_db, example_specs, capfd):
    specs, repo, fleet = example_specs
    dag = _load(specs)

    run = _run(dag, "deadbeef1234")

    assert run.state == "failed"
    states = {task_id: ti.state for task_id, ti in _task_instances(run).items()}
    assert states["source"] == "failed"
    assert states["build"] == "upstream_failed"
    assert not any(state == "success" for task, state in states.items() if task != "rollback_plan")
    assert not (fleet / PIPELINE).exists()
    out, err = capfd.readouterr()
    assert "unknown commit deadbeef1234 in" in out + err  # the task log says why


BREAKS_BETA = """import os
import unittest


class BetaOnly(unittest.TestCase):
    def test_beta_is_broken(self):
        self.assertNotEqual(os.environ.get("HANDSOFF_STAGE"), "beta", "this change breaks beta")
"""


def _set_scope(specs: Path, scope: str) -> None:
    spec_file = specs / f"{PIPELINE}.json"
    spec = json.loads(spec_file.read_text())
    spec["rollback"] = {"scope": scope, "retries": 1, "retry_delay": "1s"}
    spec_file.write_text(json.dumps(spec))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("scope", "rolled_back"), [("all", ["beta-pdx", "alpha-pdx"]), ("wave", ["beta-pdx"])]
)
def test_failed_tests_roll_back_and_fail_the_run(airflow_db, example_specs, scope, rolled_back):
    specs, repo, fleet = example_specs
    store = airflow_db / "handsoff" / "artifacts"
    _set_scope(specs, scope)
    dag = _load(specs)
    good = repo.commit("good change")
    assert _run(dag, good).state == "success"

    bad = repo.commit("breaks beta", files={"tests/integ/test_zz_beta.py": BREAKS_BETA})
    run = _run(dag, bad)

    assert run.state == "failed"
    states = {task_id: ti.state for task_id, ti in _task_instances(run).items()}
    assert states["outcome"] == "failed"
    assert states["rollback.beta.beta"] == "success"
    assert states["rollback.alpha.alpha"] == ("success" if scope == "all" else "skipped")
    assert states["rollback.prod.rest"] == "skipped"
    assert states["gamma.gamma.deploy_gamma-pdx"] == "upstream_failed"  # nothing after the failure deploys
    # newest wave first, each restored to exactly the previous commit
    log = (fleet / PIPELINE / "deploys.log").read_text().splitlines()
    assert [line.split()[1] for line in log if line.startswith("rollback")] == rolled_back
    versions = {
        t.name: (fleet / PIPELINE / t.name / "VERSION").read_text().strip()
        for t in (fleet / PIPELINE).iterdir()
        if (t / "VERSION").exists()
    }
    assert versions["beta-pdx"] == good
    assert versions["alpha-pdx"] == (good if scope == "all" else bad)
    assert versions["pdx"] == good
    record = _ledger(store, "beta-pdx")
    assert (record["current"]["commit"], record["current"]["action"], record["current"]["run_id"]) == (
        good,
        "rollback",
        run.run_id,
    )


@pytest.mark.slow
def test_a_hanging_deploy_is_killed_at_its_timeout_and_rolled_back(airflow_db, example_specs, capfd):
    import subprocess

    specs, repo, fleet = example_specs
    spec_file = specs / f"{PIPELINE}.json"
    spec = json.loads(spec_file.read_text())
    hang = {"type": "command", "deploy": "sleep 317", "rollback": "./rollback.sh", "timeout": "2s"}
    spec["stages"].append({"name": "gamma", "deploy": hang})  # merged by name into the template's gamma
    spec_file.write_text(json.dumps(spec))
    dag = _load(specs)

    bad = repo.commit("change")
    run = _run(dag, bad)

    assert run.state == "failed"
    states = {task_id: ti.state for task_id, ti in _task_instances(run).items()}
    assert states["gamma.gamma.deploy_gamma-iad"] == states["gamma.gamma.deploy_gamma-pdx"] == "failed"
    assert states["prod.onebox.deploy_onebox-iad"] == "upstream_failed"
    out = "".join(capfd.readouterr())
    # the first gamma target to start times out; the other one then refuses the commit found bad
    timed_out = re.findall(r"deploy of target (gamma-\w+): timed out after 2s", out)
    assert timed_out, out[-2000:]
    if {"gamma-iad", "gamma-pdx"} - set(timed_out):
        assert f"not promoting {bad[:12]}" in out
    assert subprocess.run(["pgrep", "-f", "sleep 317"], capture_output=True).returncode == 1  # killed
    assert states["rollback.alpha.alpha"] == states["rollback.beta.beta"] == "success"
    log = (fleet / PIPELINE / "deploys.log").read_text().splitlines()
    rolled_back = next(i for i, line in enumerate(log) if line.startswith("rollback alpha-pdx"))
    assert log.index(f"deploy alpha-pdx {bad}") < rolled_back
    version = fleet / PIPELINE / "alpha-pdx" / "VERSION"  # what ran before (earlier tests share the ledger)
    assert not version.exists() or version.read_text().strip() != bad


@pytest.mark.slow
def test_hostile_run_conf_is_never_executed_and_unknown_keys_are_refused(airflow_db, example_specs, tmp_path):
    specs, repo, fleet = example_specs
    dag = _load(specs)
    sha = repo.commit("change")
    canary = tmp_path / "pwned"
    hostile = f"$(touch {canary}) `touch {canary}`; touch {canary}\n$(rm -rf ~)"

    refused = dag.test(run_conf={"commit": sha, "branch": f"main; touch {canary}"})
    unknown = dag.test(run_conf={"commit": sha, "script": f"touch {canary}"})
    carried = dag.test(run_conf={"commit": sha, "branch": "main", "author": hostile, "message": hostile})

    assert (refused.state, unknown.state, carried.state) == ("failed", "failed", "success")
    assert _task_instances(refused)["source"].state == "failed"
    assert _task_instances(unknown)["source"].state == "failed"
    assert not canary.exists()  # the hostile values reached no shell
    assert (fleet / PIPELINE / "pdx" / "VERSION").read_text().strip() == sha
