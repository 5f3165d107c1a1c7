"""`handsoff trigger`: one run per commit through a real Airflow REST API, one-line errors, exit codes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from handsoff.cli import main
from handsoff.cli.common import TriggerExit
from handsoff.hooks.airflow_api import DEFAULT_TIMEOUT_S, AirflowApi, AirflowUnreachable
from support.airflow import api_client, free_port
from support.api_server import Server, api_server, commit_on, example_specs_with_repo
from support.repos import git

CREDENTIAL_VARS = ("HANDSOFF_AIRFLOW_USERNAME", "HANDSOFF_AIRFLOW_PASSWORD", "HANDSOFF_AIRFLOW_TOKEN")
HANDSOFF = str(Path(sys.executable).with_name("handsoff"))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("handsoff trigger: error: "), err
    return err.removeprefix("handsoff trigger: error: ").rstrip("\n")


@pytest.fixture(autouse=True)
def _no_credentials_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (*CREDENTIAL_VARS, "HANDSOFF_AIRFLOW_URL"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def airflow(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One api-server for the module, with the example DAGs parsed from specs naming a fresh repo."""
    root = tmp_path_factory.mktemp("trigger")
    specs, repo = example_specs_with_repo(root)
    with api_server(root, specs) as url:
        yield Server(url, api_client(url), specs, repo)


@pytest.fixture
def server(airflow: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    """The module's server, with HANDSOFF_SPECS_DIR and HANDSOFF_AIRFLOW_URL pointing at it."""
    monkeypatch.setenv("HANDSOFF_SPECS_DIR", str(airflow.specs))
    monkeypatch.setenv("HANDSOFF_AIRFLOW_URL", airflow.url)
    return airflow


LOGIN = ("--username", "admin", "--password", "admin")


# --- without Airflow -------------------------------------------------------------------------


def test_unknown_pipeline_exits_3(capsys, tmp_path: Path):
    specs = tmp_path / "specs"
    specs.mkdir()

    code, out, err = run(capsys, "trigger", "nope", "--specs", str(specs), *LOGIN)

    assert (code, out) == (TriggerExit.UNKNOWN_PIPELINE, "")
    assert one_line_error(err) == f"no pipeline 'nope' in {specs}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--token", "t", "--username", "admin"), "give either --token or --username/--password, not both"),
        (("--password", "secret"), "--password needs --username (or $HANDSOFF_AIRFLOW_USERNAME)"),
        (("--username", "admin"), "user 'admin' needs a password: --password or $HANDSOFF_AIRFLOW_PASSWORD"),
    ],
)
def test_credential_usage_errors_exit_2(capsys, argv, message):
    code, out, err = run(capsys, "trigger", "greeter-app", *argv)

    assert (code, out) == (2, "")
    assert one_line_error(err) == message


def test_the_client_gives_up_after_its_timeout():
    """A server that accepts connections and never answers: unreachable, "timed out"."""
    assert DEFAULT_TIMEOUT_S == 10
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        api = AirflowApi(f"http://127.0.0.1:{port}", timeout=0.5)
        started = time.monotonic()
        with pytest.raises(
            AirflowUnreachable, match=r"^Airflow at http://127\.0\.0\.1:\d+ is unreachable: timed out$"
        ):
            api.login("admin", "secret")
    assert time.monotonic() - started < 5


def test_the_client_refuses_other_schemes():
    with pytest.raises(ValueError, match="must be http:// or https://"):
        AirflowApi("file:///etc/passwd")


# --- against a real api-server ---------------------------------------------------------------


@pytest.mark.slow
def test_trigger_creates_one_run_with_the_commit_in_its_conf(capsys, server: Server):
    sha = server.repo.commit("greeter: say hello politely\n\nThe body explains why.\nSecond line.")

    code, out, err = run(capsys, "trigger", "greeter-app", *LOGIN)

    assert (code, err) == (0, "")
    assert out == (
        f"triggered greeter-app run merge-{sha[:12]} for {sha[:12]}\n"
        "note: greeter-app is paused; the run stays queued until it is unpaused\n"
    )
    run_ = server.run(f"merge-{sha[:12]}")
    assert run_["conf"] == {
        "commit": sha,
        "branch": "main",
        "author": "Dev One <dev1@example.com>",
        "message": "greeter: say hello politely\n\nThe body explains why.\nSecond line.",
    }
    assert run_["state"] == "queued"
    assert run_["logical_date"] is None


@pytest.mark.slow
def test_triggering_the_same_commit_twice_makes_one_run(capsys, server: Server):
    sha = server.repo.commit("greeter: twice")
    assert run(capsys, "trigger", "greeter-app", "--commit", sha, *LOGIN)[0] == 0
    before = server.run_ids()

    # the real console script, an abbreviated SHA, credentials from the environment
    env = {**os.environ, "HANDSOFF_AIRFLOW_USERNAME": "admin", "HANDSOFF_AIRFLOW_PASSWORD": "admin"}
    proc = subprocess.run(
        [HANDSOFF, "trigger", "greeter-app", "--commit", sha[:8]], env=env, capture_output=True, text=True
    )

    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == (
        f"run merge-{sha[:12]} already exists for {sha[:12]}; not triggered again "
        "(to deploy it again: --again --reason TEXT)\n"
    )
    assert server.run_ids() == before
    assert sum(run_id == f"merge-{sha[:12]}" for run_id in before) == 1


@pytest.mark.slow
def test_a_token_can_replace_the_login(capsys, server: Server):
    sha = server.repo.commit("greeter: with a token")

    code, out, _ = run(capsys, "trigger", "greeter-config", "--token", server.client.token)

    assert code == 0
    assert out.startswith(f"triggered greeter-config run merge-{sha[:12]} for {sha[:12]}\n")
    assert f"merge-{sha[:12]}" in server.run_ids("greeter-config")


@pytest.mark.slow
def test_a_wrong_password_exits_6_and_never_shows_the_password(server: Server):
    server.repo.commit("greeter: wrong password")
    before = server.run_ids()
    env = {**os.environ, "HANDSOFF_AIRFLOW_PASSWORD": "not-the-password-xyz"}

    proc = subprocess.run(
        [HANDSOFF, "trigger", "greeter-app", "--username", "admin"], env=env, capture_output=True, text=True
    )

    assert (proc.returncode, proc.stdout) == (TriggerExit.AUTH, "")
    assert one_line_error(proc.stderr) == f"Airflow at {server.url} refused the login of user 'admin' (401)"
    assert "not-the-password-xyz" not in proc.stderr
    assert server.run_ids() == before


@pytest.mark.slow
def test_a_bad_token_exits_6(capsys, server: Server):
    server.repo.commit("greeter: bad token")
    before = server.run_ids()

    code, out, err = run(capsys, "trigger", "greeter-app", "--token", "not-a-jwt-secret-abc")

    assert (code, out) == (TriggerExit.AUTH, "")
    assert one_line_error(err) == f"Airflow at {server.url} refused the request (403: Invalid JWT token)"
    assert "not-a-jwt-secret-abc" not in err
    assert server.run_ids() == before


@pytest.mark.slow
def test_an_unknown_commit_exits_4(capsys, server: Server):
    before = server.run_ids()

    code, out, err = run(capsys, "trigger", "greeter-app", "--commit", "deadbeefdead", *LOGIN)

    assert (code, out) == (TriggerExit.UNKNOWN_COMMIT, "")
    assert one_line_error(err) == f"unknown commit deadbeefdead in {server.repo.bare}"
    assert server.run_ids() == before


@pytest.mark.slow
def test_a_commit_that_is_not_on_the_branch_exits_5(capsys, server: Server):
    sha = commit_on(server.repo, "feature", "greeter: not merged yet")
    git("push", "-q", "origin", "feature", cwd=server.repo.work)
    before = server.run_ids()

    code, out, err = run(capsys, "trigger", "greeter-app", "--commit", sha, *LOGIN)

    assert (code, out) == (TriggerExit.NOT_ON_BRANCH, "")
    assert one_line_error(err) == f"commit {sha[:12]} is not on branch 'main' of {server.repo.bare}"
    assert server.run_ids() == before


@pytest.mark.slow
def test_an_unreachable_server_exits_7(capsys, server: Server):
    closed = f"http://127.0.0.1:{free_port()}"
    before = server.run_ids()
    started = time.monotonic()

    code, out, err = run(capsys, "trigger", "greeter-app", "--url", closed, *LOGIN)

    assert (code, out) == (TriggerExit.UNREACHABLE, "")
    assert one_line_error(err) == f"Airflow at {closed} is unreachable: connection refused"
    assert time.monotonic() - started < DEFAULT_TIMEOUT_S
    assert server.run_ids() == before


@pytest.mark.slow
def test_a_pipeline_airflow_does_not_know_exits_8(capsys, server: Server):
    spec = json.loads((server.specs / "greeter-app.json").read_text())
    new = server.specs / "greeter-new.json"
    new.write_text(json.dumps({**spec, "pipeline": "greeter-new"}))
    try:
        code, out, err = run(capsys, "trigger", "greeter-new", *LOGIN)
    finally:
        new.unlink()

    assert (code, out) == (TriggerExit.API, "")
    assert one_line_error(err) == (
        f"Airflow at {server.url} has no DAG 'greeter-new' (not parsed yet, or its spec is broken)"
    )


@pytest.mark.slow
def test_no_credentials_at_all_exits_6_with_a_hint(capsys, server: Server):
    before = server.run_ids()

    code, out, err = run(capsys, "trigger", "greeter-app")

    assert (code, out) == (TriggerExit.AUTH, "")
    assert one_line_error(err) == (
        f"Airflow at {server.url} refused the request (401: Not authenticated); "
        "give a username and password or a token"
    )
    assert server.run_ids() == before


@pytest.mark.slow
def test_a_server_error_is_retried_and_still_makes_one_run(capsys, server: Server, monkeypatch):
    """Airflow answers 500 (as its SQLite database does when locked under load), then works: one run.

    The 500s come from a proxy in front of the real api-server: a locked database cannot be caused on
    purpose here. Two 500s, then the real answer; three 500s in a row (every try) fail with the status.
    """
    from support.aws_proxy import FlakyEndpoint

    monkeypatch.setattr("handsoff.hooks.airflow_api.TRIGGER_RETRY_DELAYS_S", (0.1, 0.1))
    sha = server.repo.commit("greeter: through a busy server")
    with FlakyEndpoint(server.url) as proxy:
        proxy.fail_next(500, "/dagRuns", times=2)
        code, out, err = run(capsys, "trigger", "greeter-app", "--url", proxy.url, *LOGIN)
        assert (code, err) == (0, "")
        assert out.startswith(f"triggered greeter-app run merge-{sha[:12]} for {sha[:12]}\n")
        assert len(proxy.failed) == 2
        assert sum(run_id == f"merge-{sha[:12]}" for run_id in server.run_ids()) == 1

        other = server.repo.commit("greeter: server down for good")
        proxy.fail_next(503, "/dagRuns", times=3)
        code, out, err = run(capsys, "trigger", "greeter-app", "--url", proxy.url, *LOGIN)
    assert (code, out) == (TriggerExit.API, "")
    assert one_line_error(err).endswith("answered 503: injected by the test proxy")
    assert f"merge-{other[:12]}" not in server.run_ids()
