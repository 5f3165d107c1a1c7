"""`handsoff status`: the ledger per target, in pipeline order, as text and JSON (no Airflow processes)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from handsoff.cli import main
from handsoff.model.records import LedgerEntry
from handsoff.store.ledger import Ledger
from handsoff.store.objects import object_store
from support.repos import EXAMPLES_SPECS

A, B, C = "a" * 40, "b" * 40, "c" * 40
NEVER_DEPLOYED = [
    ("gamma", "gamma", "gamma-iad"),
    ("gamma", "gamma", "gamma-pdx"),
    ("prod", "onebox", "onebox-iad"),
    ("prod", "first-region", "iad"),
    ("prod", "rest", "pdx"),
    ("prod", "rest", "dub"),
]
TARGETS = ["alpha-pdx", "beta-pdx", "gamma-iad", "gamma-pdx", "onebox-iad", "iad", "pdx", "dub"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def deploy(commit: str, time: str, **fields: str) -> LedgerEntry:
    return LedgerEntry(commit=commit, run_id=f"merge-{commit[:12]}", time=time, **fields)


@pytest.fixture
def specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example specs; greeter-app stores its artifacts (and ledger) under tmp_path/store."""
    root = tmp_path / "specs"
    shutil.copytree(EXAMPLES_SPECS, root)
    spec_file = root / "greeter-app.json"
    spec = json.loads(spec_file.read_text())
    spec["artifacts"] = {"store": (tmp_path / "store").as_uri()}
    spec_file.write_text(json.dumps(spec))
    monkeypatch.setenv("HANDSOFF_SPECS_DIR", str(root))
    return root


@pytest.fixture
def ledger(tmp_path: Path, specs: Path) -> Ledger:
    """greeter-app's ledger: alpha deployed twice, beta once then rolled back, a target gone from the spec."""
    ledger = Ledger(object_store((tmp_path / "store").as_uri()), "greeter-app")
    ledger.record_deploy("alpha-pdx", deploy(A, "2025-06-01T10:00:00+00:00", stage="alpha", wave="alpha"))
    ledger.record_deploy("alpha-pdx", deploy(B, "2025-06-02T10:00:00+00:00", stage="alpha", wave="alpha"))
    ledger.record_deploy("beta-pdx", deploy(A, "2025-06-01T11:00:00+00:00", stage="beta", wave="beta"))
    ledger.record_deploy("beta-pdx", deploy(B, "2025-06-02T11:00:00+00:00", stage="beta", wave="beta"))
    rollback = LedgerEntry(
        commit=A, run_id=f"merge-{B[:12]}", time="2025-06-02T11:05:00+00:00", action="rollback"
    )
    ledger.record_rollback("beta-pdx", rollback)
    ledger.record_deploy("old-box", deploy(C, "2025-05-01T09:00:00+00:00"))
    return ledger


def test_status_prints_every_target_in_pipeline_order(capsys, ledger: Ledger, specs: Path):
    code, out, err = run(capsys, "status", "greeter-app")

    assert (code, err) == (0, "")
    header, *table = out.splitlines()
    warnings = [line for line in table if line.startswith("! ")]
    table = table[: len(table) - len(warnings)]
    assert header == f"greeter-app: {specs.parent / '.demo/git/greeter.git'} @ main; ledger {ledger.location}"
    assert [re.split(r"\s{2,}", line) for line in table] == [
        ["STAGE", "WAVE", "TARGET", "COMMIT", "SINCE", "RUN", "BEFORE"],
        ["alpha", "alpha", "alpha-pdx", B[:12], "2025-06-02T10:00:00+00:00", f"merge-{B[:12]}", A[:12]],
        ["beta", "beta", "beta-pdx", A[:12], "2025-06-02T11:05:00+00:00", f"merge-{B[:12]} (rollback)", "-"],
        *([stage, wave, target, "-", "-", "-", "-"] for stage, wave, target in NEVER_DEPLOYED),
        ["-", "-", "old-box (not in the spec)", C[:12], "2025-05-01T09:00:00+00:00", f"merge-{C[:12]}", "-"],
    ]
    columns = [table[0].index(name) for name in ("WAVE", "TARGET", "COMMIT", "SINCE", "RUN", "BEFORE")]
    assert all(line[column - 2 : column] == "  " for line in table for column in columns)
    # entries without what ran before handsoff's first deploy: a rollback past it would refuse, said now
    unknown = "what ran before handsoff's first deploy is unknown: a rollback would refuse"
    assert warnings == [f"! beta-pdx: {unknown}", f"! old-box: {unknown}"]


def test_status_json(capsys, ledger: Ledger):
    code, out, _ = run(capsys, "status", "greeter-app", "--json")

    doc = json.loads(out)
    assert code == 0
    assert doc["pipeline"] == "greeter-app"
    assert doc["source"]["branch"] == "main"
    assert doc["ledger"] == ledger.location
    assert [t["target"] for t in doc["targets"]] == [*TARGETS, "old-box"]
    alpha, beta, gamma = doc["targets"][:3]
    assert alpha == {
        "stage": "alpha",
        "wave": "alpha",
        "target": "alpha-pdx",
        "in_spec": True,
        "commit": B,
        "since": "2025-06-02T10:00:00+00:00",
        "run_id": f"merge-{B[:12]}",
        "action": "deploy",
        "artifact": None,
        "previous": {
            "commit": A,
            "since": "2025-06-01T10:00:00+00:00",
            "run_id": f"merge-{A[:12]}",
            "action": "deploy",
        },
        "restore_problem": None,
    }
    assert (beta["commit"], beta["action"], beta["previous"]) == (A, "rollback", None)
    assert gamma == {
        "stage": "gamma",
        "wave": "gamma",
        "target": "gamma-iad",
        "in_spec": True,
        "commit": None,
        "since": None,
        "run_id": None,
        "action": None,
        "artifact": None,
        "previous": None,
        "restore_problem": None,
    }
    assert doc["targets"][-1]["in_spec"] is False


def test_a_pipeline_without_a_store_reads_the_default_one_under_airflow_home(
    capsys, specs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    home = tmp_path / "airflow-home"
    monkeypatch.setenv("AIRFLOW_HOME", str(home))
    Ledger(object_store(None), "greeter-config").record_deploy(
        "beta-pdx", deploy(C, "2025-06-03T08:00:00+00:00")
    )

    code, out, _ = run(capsys, "status", "greeter-config")

    assert code == 0
    assert f"ledger {(home / 'handsoff' / 'artifacts').as_uri()}/greeter-config/ledger" in out.splitlines()[0]
    beta = next(line for line in out.splitlines() if " beta-pdx " in line)
    assert beta.split() == [
        "beta",
        "beta",
        "beta-pdx",
        C[:12],
        "2025-06-03T08:00:00+00:00",
        f"merge-{C[:12]}",
        "-",
    ]


def test_a_pipeline_without_a_ledger_says_where_it_looked_never_dashes(capsys, specs: Path, tmp_path: Path):
    code, out, err = run(capsys, "status", "greeter-app")

    assert (code, out) == (1, "")
    ledger = (tmp_path / "store" / "greeter-app" / "ledger").as_uri()
    assert err == (
        f"handsoff status: error: no ledger found at {ledger} (its spec's artifacts.store): nothing of "
        "greeter-app was ever deployed through this store, or Airflow's AIRFLOW_HOME (or the store) is "
        "another one\n"
    )


def test_an_unknown_pipeline_exits_3(capsys, specs: Path):
    assert run(capsys, "status", "nope") == (
        3,
        "",
        f"handsoff status: error: no pipeline 'nope' in {specs}\n",
    )
