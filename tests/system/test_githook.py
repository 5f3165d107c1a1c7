"""`handsoff git-hook install`: real repositories, real pushes and merges, a real Airflow for the runs."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from handsoff.cli import main
from handsoff.cli.git_hook import ENV_FILE, MARKER
from support.airflow import api_client, free_port
from support.api_server import Server, api_server, commit_on, example_specs_with_repo, push
from support.repos import GIT_ENV, ServiceRepo, git

PASSWORD = "hook-secret-123"
#: the example pipelines whose source is the greeter repo's main branch
MAIN_PIPELINES = ("greeter-app", "greeter-config", "greeter-lambda")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HANDSOFF_AIRFLOW_URL", "HANDSOFF_AIRFLOW_USERNAME", "HANDSOFF_AIRFLOW_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HANDSOFF_AIRFLOW_PASSWORD", PASSWORD)


def install(capsys, repo: Path, specs: Path, url: str, *extra: str) -> tuple[int, str, str]:
    code = main(["git-hook", "install", str(repo), "--specs", str(specs), "--url", url, *extra])
    out, err = capsys.readouterr()
    return code, out, err


def handsoff_lines(output: str) -> list[str]:
    """The hook's lines of a push's stderr (git prefixes them with "remote: ")."""
    lines = (line.removeprefix("remote: ").strip() for line in output.splitlines())
    return [line for line in lines if line.startswith("handsoff:")]


@pytest.fixture
def local(tmp_path: Path) -> tuple[Path, ServiceRepo]:
    """Example specs and their bare repository; no Airflow."""
    return example_specs_with_repo(tmp_path)


# --- without Airflow -------------------------------------------------------------------------


def test_install_writes_a_post_receive_hook_and_keeps_the_password_apart(capsys, local):
    specs, repo = local
    url = f"http://127.0.0.1:{free_port()}"

    code, out, err = install(capsys, repo.bare, specs, url, "--username", "admin")

    hook = repo.bare / "hooks" / "post-receive"
    env_file = repo.bare / "hooks" / ENV_FILE
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"installed post-receive hook: {hook}",
        f"  on main: triggers {', '.join(MAIN_PIPELINES)} at {url} as admin",
        f"  password stored in {env_file} (mode 0600)",
    ]
    text = hook.read_text()
    assert MARKER in text
    triggers = "; ".join(f'trigger {pid} "$new"' for pid in MAIN_PIPELINES)
    assert f"refs/heads/main) {triggers} ;;" in text
    assert f"export HANDSOFF_SPECS_DIR={specs}" in text
    assert PASSWORD not in text
    assert stat.S_IMODE(hook.stat().st_mode) == 0o755
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert env_file.read_text() == f"HANDSOFF_AIRFLOW_PASSWORD={PASSWORD}\n"


def test_installing_twice_replaces_the_hook(capsys, local):
    specs, repo = local
    install(capsys, repo.bare, specs, "http://127.0.0.1:1", "--username", "admin")
    code, out, _ = install(capsys, repo.bare, specs, "http://127.0.0.1:2", "--username", "admin")

    hooks = repo.bare / "hooks"
    assert code == 0
    assert "kept the existing hook" not in out
    assert "HANDSOFF_AIRFLOW_URL=http://127.0.0.1:2" in (hooks / "post-receive").read_text()
    assert not (hooks / "post-receive.pre-handsoff").exists()


def test_a_failing_trigger_never_blocks_the_push_and_says_why(capsys, local):
    specs, repo = local
    closed = f"http://127.0.0.1:{free_port()}"
    install(capsys, repo.bare, specs, closed, "--username", "admin")
    sha = commit_on(repo, "main", "greeter: nobody listens")

    code, output = push(repo.work, "main")

    assert code == 0, output
    assert handsoff_lines(output) == [
        f"handsoff: could not trigger {pid}: Airflow at {closed} is unreachable: connection refused"
        for pid in MAIN_PIPELINES
    ]
    assert git("rev-parse", "main", cwd=repo.bare) == sha


def test_a_foreign_hook_is_kept_and_runs_first_with_the_same_input(capsys, local):
    specs, repo = local
    hook = repo.bare / "hooks" / "post-receive"
    seen = repo.bare.parent / "seen.txt"
    hook.write_text(f"#!/bin/sh\ncat >> {seen}\necho foreign hook ran\n")
    hook.chmod(0o755)

    code, out, _ = install(capsys, repo.bare, specs, f"http://127.0.0.1:{free_port()}", "--username", "admin")
    sha = commit_on(repo, "main", "greeter: chained")
    old = git("rev-parse", "main", cwd=repo.bare)
    push_code, output = push(repo.work, "main")

    assert code == 0
    assert "  kept the existing hook as post-receive.pre-handsoff; it runs first" in out.splitlines()
    assert push_code == 0
    assert seen.read_text() == f"{old} {sha} refs/heads/main\n"
    assert "remote: foreign hook ran" in output
    assert len(handsoff_lines(output)) == len(MAIN_PIPELINES)


def test_a_foreign_hook_and_a_chained_one_refuse_the_install(capsys, local):
    specs, repo = local
    hooks = repo.bare / "hooks"
    (hooks / "post-receive").write_text("#!/bin/sh\n")
    (hooks / "post-receive.pre-handsoff").write_text("#!/bin/sh\n")

    code, out, err = install(capsys, repo.bare, specs, "http://127.0.0.1:1")

    assert (code, out) == (1, "")
    assert err == (
        f"handsoff git-hook: error: {hooks / 'post-receive'} was not written by handsoff and "
        "post-receive.pre-handsoff exists already; merge them by hand, then install again\n"
    )
    assert (hooks / "post-receive").read_text() == "#!/bin/sh\n"


def test_a_repository_no_pipeline_uses_gets_no_hook(capsys, local, tmp_path: Path):
    specs, _ = local
    other = tmp_path / "other.git"
    git("init", "-q", "--bare", str(other), cwd=tmp_path)

    code, out, err = install(capsys, other, specs, "http://127.0.0.1:1")

    assert (code, out) == (1, "")
    assert err == (
        f"handsoff git-hook: error: no pipeline in {specs} has source.repo {other}: "
        "nothing to trigger, no hook installed\n"
    )
    assert not (other / "hooks" / "post-receive").exists()


def test_a_work_tree_gets_post_merge_for_its_branch_only(capsys, tmp_path: Path):
    """A non-bare repository: `git merge` into the pipeline's branch triggers; into another does not."""
    specs, repo = example_specs_with_repo(tmp_path)
    template = specs / "templates" / "service.json"
    service = json.loads(template.read_text())
    service["source"] = {"repo": str(repo.work), "branch": "main"}
    template.write_text(json.dumps(service))
    closed = f"http://127.0.0.1:{free_port()}"

    code, out, _ = install(capsys, repo.work, specs, closed, "--username", "admin")
    git("checkout", "-q", "-b", "topic", cwd=repo.work)
    sha = commit_on(repo, "topic", "greeter: topic work")
    git("checkout", "-q", "main", cwd=repo.work)
    merged = _merge(repo.work, "topic")
    git("checkout", "-q", "-b", "other", "main~1", cwd=repo.work)
    elsewhere = _merge(repo.work, "topic")

    assert code == 0
    assert out.startswith(f"installed post-merge hook: {repo.work / '.git' / 'hooks' / 'post-merge'}\n")
    assert git("rev-parse", "main", cwd=repo.work) == sha
    assert handsoff_lines(merged) == [  # the pipelines of the template (greeter-lambda names its own repo)
        f"handsoff: could not trigger {pid}: Airflow at {closed} is unreachable: connection refused"
        for pid in ("greeter-app", "greeter-config")
    ]
    assert handsoff_lines(elsewhere) == []


def _merge(work: Path, branch: str) -> str:
    """`git merge BRANCH` in `work`; its output, where the post-merge hook's lines go."""
    proc = subprocess.run(
        ["git", "merge", "--no-edit", branch],
        cwd=work,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout + proc.stderr


# --- against a real api-server ---------------------------------------------------------------


@pytest.fixture(scope="module")
def _server(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One api-server for the module, with the example DAGs parsed from specs naming a fresh repo."""
    root = tmp_path_factory.mktemp("githook")
    specs, repo = example_specs_with_repo(root)
    with api_server(root, specs) as url:
        yield Server(url, api_client(url), specs, repo)


@pytest.fixture
def airflow(_server: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    """The module's server; the hook gets its real password (admin) unless a test sets another."""
    monkeypatch.setenv("HANDSOFF_AIRFLOW_PASSWORD", "admin")
    return _server


@pytest.mark.slow
def test_a_push_to_main_triggers_both_pipelines_with_the_right_conf(capsys, airflow: Server):
    install(capsys, airflow.repo.bare, airflow.specs, airflow.url, "--username", "admin")
    repo = airflow.repo
    sha = commit_on(repo, "main", "greeter: pushed\n\nWith a body.")

    code, output = push(repo.work, "main")

    run_id = f"merge-{sha[:12]}"
    assert code == 0, output
    assert handsoff_lines(output) == [
        line
        for pid in MAIN_PIPELINES
        for line in (
            f"handsoff: triggered {pid} run {run_id} for {sha[:12]}",
            f"handsoff: note: {pid} is paused; the run stays queued until it is unpaused",
        )
    ]
    for dag_id in MAIN_PIPELINES:
        assert airflow.run(run_id, dag_id)["conf"] == {
            "commit": sha,
            "branch": "main",
            "author": "Dev One <dev1@example.com>",
            "message": "greeter: pushed\n\nWith a body.",
        }


@pytest.mark.slow
def test_a_push_to_another_branch_triggers_nothing(capsys, airflow: Server):
    install(capsys, airflow.repo.bare, airflow.specs, airflow.url, "--username", "admin")
    before = {dag_id: airflow.run_ids(dag_id) for dag_id in MAIN_PIPELINES}
    sha = commit_on(airflow.repo, "feature", "greeter: feature work")

    code, output = push(airflow.repo.work, "feature")

    assert code == 0, output
    assert handsoff_lines(output) == []
    assert git("rev-parse", "feature", cwd=airflow.repo.bare) == sha
    assert {dag_id: airflow.run_ids(dag_id) for dag_id in before} == before


@pytest.mark.slow
def test_a_wrong_password_in_the_hook_does_not_block_the_push(capsys, airflow: Server, monkeypatch):
    monkeypatch.setenv("HANDSOFF_AIRFLOW_PASSWORD", "wrong-password-456")
    install(capsys, airflow.repo.bare, airflow.specs, airflow.url, "--username", "admin")
    before = airflow.run_ids()
    commit_on(airflow.repo, "main", "greeter: wrong password")

    code, output = push(airflow.repo.work, "main")

    assert code == 0, output
    assert handsoff_lines(output)[0] == (
        f"handsoff: could not trigger greeter-app: "
        f"Airflow at {airflow.url} refused the login of user 'admin' (401)"
    )
    assert "wrong-password-456" not in output
    assert airflow.run_ids() == before


def test_the_password_can_come_from_a_file(capsys, local, tmp_path: Path, monkeypatch):
    specs, repo = local
    monkeypatch.delenv("HANDSOFF_AIRFLOW_PASSWORD")
    secret = tmp_path / "airflow-password"
    secret.write_text("from-a-file\n")

    code, _, _ = install(
        capsys, repo.bare, specs, "http://127.0.0.1:1", "--username", "u", "--password-file", str(secret)
    )

    assert code == 0
    assert (repo.bare / "hooks" / ENV_FILE).read_text() == "HANDSOFF_AIRFLOW_PASSWORD=from-a-file\n"
    assert "from-a-file" not in (repo.bare / "hooks" / "post-receive").read_text()
