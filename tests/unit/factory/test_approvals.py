"""Approvals, the DAG's doc and the commit/artifact links, as the spec and the factory build them."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest


def _spec(**source: object) -> dict:
    return {
        "pipeline": "orders",
        "owners": ["orders-team"],
        "tags": ["orders"],
        "source": {"repo": "/srv/git/orders.git", **source},
        "build": {"artifact": "dist/app.zip"},
        "deploy": {"type": "command", "deploy": "./deploy.sh", "rollback": "./rollback.sh"},
        "rollback": {"scope": "wave"},
        "alarms": {"rollback": ["${target.name}-errors"]},
        "stages": [
            {"name": "beta", "waves": [{"name": "beta", "targets": [{"name": "beta"}]}]},
            {
                "name": "prod",
                "approval": {"approvers": ["alice", "bob"], "instructions": "Check the UI change"},
                "waves": [
                    {"name": "onebox", "targets": [{"name": "onebox", "region": "us-east-1"}]},
                    {
                        "name": "rest",
                        "approval": {"approvers": ["carol"], "timeout": "30m"},
                        "alarms": {"blockers": ["prod-ticket-sev2"]},
                        "window": "always",
                        "targets": [{"name": "pdx"}, {"name": "dub"}],
                    },
                ],
            },
        ],
        "windows": {"always": {"timezone": "UTC"}},
    }


def _load(tmp_path: Path, spec: dict):
    from handsoff.spec import load_pipeline

    (tmp_path / "orders.json").write_text(json.dumps(spec))
    return load_pipeline(tmp_path / "orders.json", tmp_path)


@pytest.fixture
def dag(tmp_path: Path):
    from handsoff.factory.pipeline_dag import build_dag

    return build_dag(_load(tmp_path, _spec(commit_url="https://git.example.com/orders/commit/${commit}")))


def test_approvals_resolve_onto_stages_and_waves(tmp_path):
    from handsoff.model.pipeline import Approval

    pipeline = _load(tmp_path, _spec())
    beta, prod = pipeline.stages
    assert beta.approval is None and beta.waves[0].approval is None
    assert prod.approval == Approval(("alice", "bob"), "Check the UI change", timedelta(hours=24))
    assert prod.waves[0].approval is None  # a stage's approval gates the stage once, not every wave
    assert prod.waves[1].approval == Approval(("carol",), "", timedelta(minutes=30))
    assert pipeline.source.commit_url is None


@pytest.mark.parametrize(
    ("approval", "where"),
    [
        ({"approvers": []}, "approvers"),
        ({"approvers": ["alice", "alice"]}, "approvers"),
        ({"approvers": [""]}, "approvers[0]"),
        ({"approvers": ["alice"], "timeout": "tomorrow"}, "timeout"),
        ({"approvers": ["alice"], "approve": True}, "approval"),
        ({"instructions": "no approvers"}, "approval"),
    ],
)
def test_bad_approvals_are_spec_errors(tmp_path, approval, where):
    from handsoff.spec.errors import SpecErrors

    spec = _spec()
    spec["stages"][1]["approval"] = approval
    with pytest.raises(SpecErrors) as raised:
        _load(tmp_path, spec)
    assert any("stages[1]" in issue.path and where in issue.path for issue in raised.value.issues), str(
        raised.value
    )


@pytest.mark.parametrize(
    "url", ["git.example.com/${commit}", "ftp://git.example.com/${commit}", "https://git.example.com/commit/"]
)
def test_commit_url_must_be_http_with_the_commit_placeholder(tmp_path, url):
    from handsoff.spec.errors import SpecErrors

    with pytest.raises(SpecErrors, match="commit_url"):
        _load(tmp_path, _spec(commit_url=url))


def test_approval_tasks_come_first_in_their_stage_and_wave(dag):
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    stage, wave = dag.get_task("prod.approval"), dag.get_task("prod.rest.approval")
    assert isinstance(stage, ApprovalOperator) and isinstance(wave, ApprovalOperator)
    assert stage.upstream_task_ids == {"beta.beta.deploy_beta"}
    assert stage.downstream_task_ids >= {"prod.onebox.deploy_onebox"}
    assert dag.get_task("prod.onebox.deploy_onebox").upstream_task_ids == {"prod.approval"}
    assert wave.upstream_task_ids == {"prod.onebox.deploy_onebox"}  # no wave bake in this spec
    assert dag.get_task("prod.rest.window").upstream_task_ids == {"prod.rest.approval"}
    assert dag.get_task("prod.rest.blockers").upstream_task_ids == {"prod.rest.window"}
    assert stage.assigned_users == [{"id": "alice", "name": "alice"}, {"id": "bob", "name": "bob"}]
    assert wave.assigned_users == [{"id": "carol", "name": "carol"}]
    assert (stage.response_timeout, wave.response_timeout) == (timedelta(hours=24), timedelta(minutes=30))
    subject, body = stage.request_text("0123456789abcdef")
    assert subject == "orders: approve stage prod for commit 0123456789ab"
    assert body.startswith("Check the UI change\n")
    assert "- `onebox` in us-east-1 (command)" in body and "- `dub` (command)" in body
    assert "- `onebox`" not in wave.request_text("0123456789abcdef")[1]
    deploys = {t: dag.get_task(t).approvals for t in ("prod.onebox.deploy_onebox", "prod.rest.deploy_dub")}
    assert deploys == {  # every deploy behind an approval checks its recorded answer
        "prod.onebox.deploy_onebox": [{"where": "stage prod", "approvers": ["alice", "bob"]}],
        "prod.rest.deploy_dub": [
            {"where": "stage prod", "approvers": ["alice", "bob"]},
            {"where": "wave prod.rest", "approvers": ["carol"]},
        ],
    }
    assert dag.get_task("beta.beta.deploy_beta").approvals == []
    assert not stage.fail_on_reject  # we fail on reject ourselves, with the reason


def test_approvals_are_watched_but_never_a_rollback_cause(dag):
    plan = dag.get_task("rollback_plan")
    assert {"prod.approval", "prod.rest.approval"} <= plan.upstream_task_ids
    assert {"prod.approval", "prod.rest.approval"} <= dag.get_task("outcome").upstream_task_ids
    failure_tasks = {t for wave in plan.plan["waves"] for t in wave["failure_tasks"]}
    failure_tasks |= {t for tasks in plan.plan["stage_tasks"].values() for t in tasks}
    assert not {t for t in failure_tasks if t.endswith("approval")}


def test_rejected_approval_rolls_nothing_back():
    from handsoff.model.rollback import plan_rollback

    waves = [
        {"stage": "beta", "wave": "beta", "failure_tasks": ["beta.beta.deploy_beta"]},
        {"stage": "prod", "wave": "onebox", "failure_tasks": ["prod.onebox.deploy_onebox"]},
    ]
    assert plan_rollback("all", waves, {}, {"prod.approval"}) == []


def test_the_dag_serializes_with_approvals_and_links(dag, monkeypatch):
    from airflow.serialization.serialized_objects import DagSerialization

    # As the API server reads DAGs (links on). The flag is process-wide and Airflow turns it off when it
    # reads a DAG the way the scheduler does (a dag.test() of another test on this worker).
    monkeypatch.setattr(DagSerialization, "_load_operator_extra_links", True)
    data = DagSerialization.to_dict(dag)
    restored = DagSerialization.from_dict(data)
    assert restored.get_task("prod.approval").task_type == "DeploymentApprovalOperator"
    assert set(restored.get_task("source").extra_links) == {"Commit"}
    assert set(restored.get_task("build").extra_links) == {"Artifact"}


def test_doc_md_says_what_runs_where(dag):
    doc = dag.doc_md
    assert "- **Owners:** orders-team" in doc
    assert "- **Tags:** orders" in doc
    assert "- **Commit link:** https://git.example.com/orders/commit/${commit}" in doc
    assert "- **Rollback:** on a failed deploy, bake, alarm or test: the failed wave's targets" in doc
    assert "(scope `wave`, 3 retries)" in doc
    assert "| prod | (approval) | - | - | - | alice, bob within 1d: Check the UI change |" in doc
    assert "| prod | onebox | onebox (us-east-1) | - | rollback onebox: `onebox-errors` | - |" in doc
    assert (
        "| prod | rest | pdx, dub | - | rollback pdx: `pdx-errors`; rollback dub: `dub-errors`; "
        "blockers: `prod-ticket-sev2` | carol within 30m |"
    ) in doc
    assert set(dag.tags) == {"handsoff", "orders"} and dag.default_args["owner"] == "orders-team"
