"""`handsoff validate`: the loader's checks from the command line, exit codes 0/1/2, one line per issue."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from handsoff.settings import SPECS_DIR_ENV, default_specs_dir
from support.cli import run, spec
from support.repos import REPO_ROOT


def test_validate_a_valid_folder(capsys, specs_dir):
    assert run(capsys, "validate", str(specs_dir)) == (0, "2 pipeline(s) valid\n", "")


def test_validate_defaults_to_the_configured_specs_dir(capsys, specs_dir, monkeypatch):
    monkeypatch.setenv(SPECS_DIR_ENV, str(specs_dir))

    assert run(capsys, "validate") == (0, "2 pipeline(s) valid\n", "")


def test_default_specs_dir_is_the_repos_pipeline_specs_when_unset(monkeypatch):
    monkeypatch.delenv(SPECS_DIR_ENV, raising=False)

    assert default_specs_dir() == REPO_ROOT / "pipeline_specs"


def test_validate_the_repos_own_specs(capsys, monkeypatch):
    monkeypatch.delenv(SPECS_DIR_ENV, raising=False)

    code, out, _ = run(capsys, "validate")

    assert (code, out.endswith(" pipeline(s) valid\n")) == (0, True)


def test_validate_prints_every_error_as_file_path_message(capsys, specs_dir):
    broken = specs_dir / "team/broken.json"
    broken.write_text(json.dumps(spec("broken", bake="soon", descripton="x")))
    (specs_dir / "bad.json").write_text("[]")

    code, out, err = run(capsys, "validate", str(specs_dir))

    assert (code, err) == (1, "")
    assert out.splitlines() == [
        f"{specs_dir / 'bad.json'}: $: the top level must be a JSON object, not an array",
        f"{broken}: $.bake: 'soon' is not a duration like 30s, 5m, 1h or 2d",
        f"{broken}: $.descripton: unknown key 'descripton' (did you mean 'description'?)",
    ]


def test_validate_a_lone_file_finds_its_specs_root(capsys, specs_dir):
    assert run(capsys, "validate", str(specs_dir / "team/billing.json")) == (0, "1 pipeline(s) valid\n", "")


def test_validate_several_paths_checks_ids_across_them(capsys, specs_dir, tmp_path):
    other = tmp_path / "other"
    (other / "templates").mkdir(parents=True)
    (other / "templates/base.json").write_text((specs_dir / "templates/base.json").read_text())
    twin = other / "orders.json"
    twin.write_text(json.dumps(spec("orders")))

    code, out, _ = run(capsys, "validate", str(specs_dir), str(specs_dir / "orders.json"), str(twin))

    assert code == 1
    assert out.splitlines() == [
        f"{specs_dir / 'orders.json'}: $.pipeline: pipeline id 'orders' is also defined in {twin}",
        f"{twin}: $.pipeline: pipeline id 'orders' is also defined in {specs_dir / 'orders.json'}",
    ]


def test_validate_a_missing_path_is_a_usage_error(capsys, tmp_path):
    code, out, err = run(capsys, "validate", str(tmp_path / "nope.json"))

    assert (code, out) == (2, "")
    assert err == f"handsoff validate: error: no such file or folder: {tmp_path / 'nope.json'}\n"


def test_python_m_handsoff_cli_validate_in_a_subprocess(specs_dir):
    (specs_dir / "bad.json").write_text("{}")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "provider")}

    ok = subprocess.run(
        [sys.executable, "-m", "handsoff.cli", "validate", str(specs_dir / "orders.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    bad = subprocess.run(
        [sys.executable, "-m", "handsoff.cli", "validate", str(specs_dir / "bad.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "1 pipeline(s) valid\n", "")
    assert bad.returncode == 1
    assert bad.stdout.splitlines() == [
        f"{specs_dir / 'bad.json'}: $: missing required key {key!r}"
        for key in ("pipeline", "source", "build", "stages")
    ]


def test_validate_does_not_import_airflow(specs_dir):
    code = (
        "import sys\n"
        "from handsoff.cli import main\n"
        f"assert main(['validate', {str(specs_dir)!r}]) == 0\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'airflow'], 'airflow imported'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "provider")}

    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)

    assert (done.returncode, done.stderr) == (0, "")
