"""On-demand rollback under `dag.test()`: real git repository, real Airflow, the example service's command
deployer writing the fleet (and the moto-backed Lambda deployer); plus the review gate in a whole run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.runs import run_rollback, task_states

PIPELINE = "greeter-ops"
LAYOUT = {"pre": {"alpha": ["alpha-pdx"]}, "prod": {"onebox": ["onebox-iad"], "rest": ["pdx", "dub"]}}
TARGETS = ["alpha-pdx", "onebox-iad", "pdx", "dub"]


def ops_spec(store: Path, review: dict | None = None) -> dict:
    """Build (package the config), then pre (one wave) and prod (onebox, rest); no tests, no bakes."""
    source: dict = {"repo": "../.demo/git/greeter.git", "branch": "main"}
    if review is not None:
        source["review"] = review
    return {
        "pipeline": PIPELINE,
        "source": source,
        "artifacts": {"store": store.as_uri()},
        "build": {
            "steps": [{"name": "package", "command": "make config"}],
            "artifact": "dist/greeter-config.tar.gz",
        },
        "deploy": {"type": "command", "deploy": "./deploy.sh", "rollback": "./rollback.sh", "timeout": "1m"},
        "stages": [
            {
                "name": stage,
                "waves": [{"name": w, "targets": [{"name": t} for t in ts]} for w, ts in waves.items()],
            }
            for stage, waves in LAYOUT.items()
        ],
    }


def load(specs: Path, spec: dict) -> dict:
    from handsoff.factory.loader import load_dags

    (specs / f"{PIPELINE}.json").write_text(json.dumps(spec, indent=2))
    return load_dags(specs)


def versions(fleet: Path) -> dict[str, str | None]:
    out = {}
    for target in TARGETS:
        version = fleet / PIPELINE / target / "VERSION"
        out[target] = version.read_text().strip() if version.exists() else None
    return out


def rollbacks(fleet: Path) -> list[tuple[str, str]]:
    """(target, commit) of every rollback in deploys.log, in order."""
    lines = (fleet / PIPELINE / "deploys.log").read_text().splitlines()
    return [tuple(line.split()[1:3]) for line in lines if line.startswith("rollback ")]


def ledger(store: Path, target: str) -> dict:
    return json.loads((store / PIPELINE / "ledger" / f"{target}.json").read_text())


@pytest.fixture
def deployed(airflow_db, example_specs, tmp_path):
    """c1, c2, c3 deployed everywhere in turn (three runs): the rollback DAG, fleet, store, shas, repo."""
    specs, repo, fleet = example_specs
    store = tmp_path / "store"
    dags = load(specs, ops_spec(store))
    shas = []
    for n in (1, 2, 3):
        shas.append(repo.commit(f"change {n}"))
        assert dags[PIPELINE].test(run_conf={"commit": shas[-1]}).state == "success"
    return dags[f"{PIPELINE}__rollback"], fleet, store, shas, repo


@pytest.mark.slow
def test_rollback_by_wave_stage_all_and_to_with_refusals_that_change_nothing(deployed, capfd):
    dag, fleet, store, (c1, c2, c3), repo = deployed
    assert set(versions(fleet).values()) == {c3}

    # refused: an unknown target, and a --to that never ran there; nothing changes
    bad = run_rollback(dag, scope="target", targets=["pdx", "nope"], reason="typo")
    assert bad.state == "failed"
    assert task_states(bad)["plan"] == "failed"
    assert "unknown target(s) nope; targets: alpha-pdx, onebox-iad, pdx, dub" in "".join(capfd.readouterr())
    never = repo.commit("never deployed")
    bad = run_rollback(dag, scope="wave", wave="rest", to=never[:10], reason="oops")
    assert bad.state == "failed"
    assert f"commit {never[:10]} was never deployed to target pdx" in "".join(capfd.readouterr())
    assert set(versions(fleet).values()) == {c3}
    assert not rollbacks(fleet)

    # one wave: back to the previous version
    run = run_rollback(dag, scope="wave", wave="prod.rest", reason="5xx in rest", requested_by="oncall")
    assert run.state == "success", task_states(run)
    assert versions(fleet) == {"alpha-pdx": c3, "onebox-iad": c3, "pdx": c2, "dub": c2}
    assert task_states(run)["restore"] == "success"  # one task restores the chosen targets, newest first
    entry = ledger(store, "pdx")["current"]
    assert (entry["commit"], entry["action"], entry["run_id"]) == (c2, "rollback", run.run_id)
    assert (entry["requested_by"], entry["reason"]) == ("oncall", "5xx in rest")
    assert entry["time"]

    # a stage
    assert run_rollback(dag, scope="stage", stage="pre", reason="alpha broken").state == "success"
    assert versions(fleet)["alpha-pdx"] == c2

    # everything, --to an older deployed commit: newest wave first
    before = len(rollbacks(fleet))
    run = run_rollback(dag, scope="all", to=c1[:8], reason="back to the last good")
    assert run.state == "success", task_states(run)
    assert set(versions(fleet).values()) == {c1}
    order = [t for t, _ in rollbacks(fleet)[before:]]
    assert order[-2:] == ["onebox-iad", "alpha-pdx"] and sorted(order[:2]) == ["dub", "pdx"]
    assert "no alarms" in "".join(capfd.readouterr())  # the report: these targets have no alarms


@pytest.mark.slow
def test_review_gate_fails_a_run_before_the_build_naming_the_commit(
    airflow_db, example_specs, tmp_path, capfd
):
    specs, repo, fleet = example_specs
    dags = load(specs, ops_spec(tmp_path / "store", review={"required": True, "min_reviewers": 1}))
    dag = dags[PIPELINE]

    sha = repo.commit("unreviewed change")
    run = dag.test(run_conf={"commit": sha})

    assert run.state == "failed"
    got = task_states(run)
    assert (got["source"], got["review"], got["build"]) == ("success", "failed", "upstream_failed")
    assert not (fleet / PIPELINE).exists()
    assert f"{sha[:12]} Dev One <dev1@example.com>: unreviewed change" in "".join(capfd.readouterr())


@pytest.mark.slow
def test_review_gate_passes_reviewed_commits(airflow_db, example_specs, tmp_path):
    specs, repo, fleet = example_specs
    dag = load(specs, ops_spec(tmp_path / "store", review={"required": True}))[PIPELINE]

    sha = repo.commit("reviewed\n\nApproved-by: Bob <bob@example.com>")
    run = dag.test(run_conf={"commit": sha})

    assert run.state == "success", task_states(run)
    assert task_states(run)["review"] == "success"
    assert set(versions(fleet).values()) == {sha}
