"""The command deployer with the example service's own deploy.sh and rollback.sh."""

from __future__ import annotations

from pathlib import Path

import pytest
from handsoff.deployers.base import DeployContext, RestoreImpossible
from handsoff.deployers.registry import get_deployer
from handsoff.model.records import LedgerEntry
from support.repos import EXAMPLE_SERVICE


def _ctx(
    tmp_path: Path, commit: str, artifact: Path, previous: LedgerEntry | None, prev_artifact: Path | None
):
    return DeployContext(
        pipeline="svc",
        stage="prod",
        wave="onebox",
        target="use1",
        target_fields={"name": "use1", "region": "us-east-1"},
        commit=commit,
        run_id="r1",
        artifact=artifact,
        previous=previous,
        previous_artifact=prev_artifact,
        workdir=EXAMPLE_SERVICE,
    )


def test_deploy_then_rollback_restores_exactly_the_previous_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("GREETER_FLEET_DIR", str(tmp_path / "fleet"))
    old, new = tmp_path / "old" / "app.zip", tmp_path / "new" / "app.zip"
    for path, data in ((old, b"old"), (new, b"new")):
        path.parent.mkdir()
        path.write_bytes(data)
    deployer = get_deployer({"type": "command", "deploy": "./deploy.sh", "rollback": "./rollback.sh"})
    target_dir = tmp_path / "fleet" / "svc" / "use1"

    deployer.deploy(_ctx(tmp_path, "c1", old, None, None))
    first = LedgerEntry(commit="c1", run_id="r0", time="t")
    deployer.deploy(_ctx(tmp_path, "c2", new, first, old))
    assert (target_dir / "VERSION").read_text().strip() == "c2"

    deployer.rollback(_ctx(tmp_path, "c2", new, first, old))
    assert (target_dir / "VERSION").read_text().strip() == "c1"
    assert (target_dir / "app.zip").read_bytes() == b"old"

    nothing = LedgerEntry(commit="", run_id="", time="", detail={"current": "", "absent": True})
    deployer.rollback(
        _ctx(tmp_path, "c1", old, nothing, None)
    )  # nothing ran before: the deployment is removed
    assert not target_dir.exists()


def test_a_rollback_whose_artifact_is_gone_refuses_before_running_anything(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("GREETER_FLEET_DIR", str(tmp_path / "fleet"))
    new = tmp_path / "new" / "app.zip"
    new.parent.mkdir()
    new.write_bytes(b"new")
    deployer = get_deployer({"type": "command", "deploy": "./deploy.sh", "rollback": "./rollback.sh"})
    deployer.deploy(_ctx(tmp_path, "c2", new, None, None))
    good = LedgerEntry(commit="c1" * 20, run_id="r0", time="t", artifact="file:///store/c1/app.zip")

    with pytest.raises(
        RestoreImpossible, match=r"the artifact of commit c1c1c1c1c1c1, .* is no longer in the store"
    ):
        deployer.rollback(_ctx(tmp_path, "c2", new, good, None))  # the store lost it
    assert (tmp_path / "fleet" / "svc" / "use1" / "VERSION").read_text().strip() == "c2"  # untouched


def test_current_says_what_runs_and_its_output_reaches_the_rollback(tmp_path: Path, monkeypatch):
    out = tmp_path / "seen"
    spec = {
        "type": "command",
        "deploy": "true",
        "rollback": f'echo "$HANDSOFF_PREVIOUS_CURRENT" > {out}',
        "current": "echo v0.9",
    }
    deployer = get_deployer(spec)
    before = deployer.observe(_ctx(tmp_path, "c1", tmp_path, None, None))
    assert before == {"current": "v0.9"}
    assert get_deployer({**spec, "current": "true"}).observe(_ctx(tmp_path, "c1", tmp_path, None, None)) == {
        "current": "",
        "absent": True,
    }
    assert get_deployer({**spec, "current": None}).observe(_ctx(tmp_path, "c1", tmp_path, None, None)) is None

    deployer.rollback(
        _ctx(tmp_path, "c1", tmp_path, LedgerEntry(commit="", run_id="", time="", detail=before), None)
    )
    assert out.read_text() == "v0.9\n"


def test_unknown_deployer_type_is_named():
    known = "cloudformation, command, ecs, lambda"
    with pytest.raises(ValueError, match=f"unknown deployer type 'helm'; known: {known}"):
        get_deployer({"type": "helm"})
