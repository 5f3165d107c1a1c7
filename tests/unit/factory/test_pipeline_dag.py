"""The DAG a pipeline becomes: groups, order, parallel targets, shards, bakes."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from support.specs import ISSUE_EXAMPLE


@pytest.fixture(scope="module")
def orders_dag(tmp_path_factory: pytest.TempPathFactory):
    from handsoff.factory.pipeline_dag import build_dag
    from handsoff.spec import load_pipeline

    root = tmp_path_factory.mktemp("specs")
    (root / "templates").mkdir()
    (root / "templates" / "service.json").write_text(json.dumps({"tags": ["orders"], "owners": ["sre"]}))
    (root / "orders-api.json").write_text(json.dumps(ISSUE_EXAMPLE))
    return build_dag(load_pipeline(root / "orders-api.json", root))


WATCHERS = {"rollback_plan", "outcome"}  # downstream of every deployment task


def _downstream(dag, task_id: str) -> set[str]:
    """The deployment tasks that follow `task_id` (the rollback plan and watcher follow all of them)."""
    downstream = set(dag.get_task(task_id).downstream_task_ids)
    assert downstream >= WATCHERS, task_id
    return downstream - WATCHERS


def test_the_issue_example_maps_to_groups_in_pipeline_order(orders_dag):
    dag = orders_dag
    assert dag.dag_id == "orders-api"
    assert dag.max_active_runs == 1
    assert set(dag.tags) == {"handsoff", "orders"}
    assert dag.default_args["owner"] == "orders-team"
    stages = {"alpha", "beta", "gamma", "prod"}
    assert set(dag.task_group.children) == {"source", "build", *stages, "rollback", *WATCHERS}
    assert _downstream(dag, "source") == {"build"}
    assert _downstream(dag, "build") == {"alpha.alpha.deploy_alpha"}
    assert _downstream(dag, "alpha.alpha.deploy_alpha") == {"alpha.test_integration"}
    assert _downstream(dag, "alpha.test_integration") == {"alpha.bake"}
    assert _downstream(dag, "alpha.bake") == {"beta.beta.deploy_beta"}
    assert _downstream(dag, "beta.test_integration") == {
        "gamma.gamma.deploy_gamma-usw2",
        "gamma.gamma.deploy_gamma-use1",
    }
    # the targets of a wave deploy in parallel, then the stage's tests
    for target in ("gamma-usw2", "gamma-use1"):
        assert _downstream(dag, f"gamma.gamma.deploy_{target}") == {"gamma.test_canary"}
    assert _downstream(dag, "gamma.bake") == {"prod.onebox.deploy_use1-onebox"}
    assert _downstream(dag, "prod.onebox.deploy_use1-onebox") == {"prod.onebox.bake"}
    assert _downstream(dag, "prod.onebox.bake") == {"prod.first-region.deploy_use1"}
    assert _downstream(dag, "prod.first-region.bake") == {"prod.rest.deploy_usw2", "prod.rest.deploy_euw1"}
    assert _downstream(dag, "prod.rest.bake") == set()


def test_bakes_and_shards_follow_the_spec(orders_dag):
    dag = orders_dag
    bakes = {t.task_id: t.bake_seconds for t in dag.tasks if t.task_id.endswith("bake")}
    assert bakes == {
        "alpha.bake": 300,
        "gamma.bake": 1800,
        "prod.onebox.bake": 3600,
        "prod.first-region.bake": 43200,
        "prod.rest.bake": 14400,
    }
    shards = {t.task_id: t.expand_input.value["shard_index"] for t in dag.tasks if "test_" in t.task_id}
    assert shards == {
        "alpha.test_integration": [0, 1, 2, 3],
        "beta.test_integration": [0, 1, 2, 3],
        "gamma.test_canary": [0, 1],
    }
    assert all(t.deferrable for t in dag.tasks if t.task_id.endswith("bake"))


def test_deploy_tasks_carry_the_resolved_deployer_and_target(orders_dag):
    task = orders_dag.get_task("prod.rest.deploy_euw1")
    assert task.target == {"name": "euw1", "region": "eu-west-1"}
    assert task.deploy == {"type": "command", "deploy": "./deploy.sh", "rollback": "./rollback.sh"}
    assert (task.stage, task.wave, task.store) == ("prod", "rest", "file:///var/lib/handsoff/artifacts")


def test_doc_md_summarises_the_pipeline(orders_dag):
    doc = orders_dag.doc_md
    assert "| prod | first-region | use1 (us-east-1) | 12h |" in doc
    assert "| gamma | tests | canary ×2 shards | - |" in doc
    assert "/srv/git/orders-api.git" in doc


def test_serializes(orders_dag):
    from airflow.serialization.serialized_objects import DagSerialization

    data = DagSerialization.to_dict(orders_dag)
    assert len(data["dag"]["tasks"]) == len(orders_dag.tasks)


def test_every_wave_has_a_rollback_chained_newest_first_after_the_plan(orders_dag):
    dag = orders_dag
    rollbacks = [
        "rollback.prod.rest",
        "rollback.prod.first-region",
        "rollback.prod.onebox",
        "rollback.gamma.gamma",
        "rollback.beta.beta",
        "rollback.alpha.alpha",
    ]
    plan = dag.get_task("rollback_plan")
    assert set(plan.downstream_task_ids) == {*rollbacks, "outcome"}
    assert plan.trigger_rule == "all_done"
    for newer, older in zip(rollbacks, rollbacks[1:], strict=False):
        assert older in dag.get_task(newer).downstream_task_ids
    assert {dag.get_task(r).trigger_rule for r in rollbacks} == {"all_done"}
    outcome = dag.get_task("outcome")
    assert outcome.trigger_rule == "one_failed"
    assert set(outcome.upstream_task_ids) == {t.task_id for t in dag.tasks} - {"outcome"}
    waves = plan.plan["waves"]
    assert waves[3] == {
        "stage": "prod",
        "wave": "onebox",
        "rollback_task": "rollback.prod.onebox",
        "failure_tasks": ["prod.onebox.deploy_use1-onebox", "prod.onebox.bake"],
    }
    assert plan.plan["stage_tasks"]["alpha"] == ["alpha.test_integration", "alpha.bake"]


def test_every_task_has_an_execution_timeout_so_no_hung_command_holds_the_run(orders_dag):
    timeouts = {task.task_id: task.execution_timeout for task in orders_dag.tasks}

    assert all(timeouts.values()), [t for t, v in timeouts.items() if not v]
    assert timeouts["build"] == timedelta(hours=2, minutes=10)  # 3 steps and coverage, 30 min each
    assert timeouts["prod.first-region.bake"] >= timedelta(hours=12)  # a long bake is not cut short
