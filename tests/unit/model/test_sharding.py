"""Test sharding: JUnit durations per file, balanced and round-robin splits, and `handsoff shard`."""

from __future__ import annotations

from pathlib import Path

import pytest
from handsoff.cli import main
from handsoff.model.sharding import (
    BALANCED,
    ROUND_ROBIN,
    balanced,
    junit_durations,
    makespan,
    round_robin,
    split,
)
from hypothesis import given
from hypothesis import strategies as st

FILES = ["tests/test_a.py", "tests/test_b.py", "tests/spec/test_c.py", "tests/spec/test_d.py"]

# pytest's default (xunit2): no file attribute, the classname is the dotted module path (+ class).
PYTEST_XML = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="6">
  <testcase classname="tests.test_a" name="test_one" time="10.5"/>
  <testcase classname="tests.test_a.TestGroup" name="test_two" time="4.5"/>
  <testcase classname="tests.test_b" name="test_fast" time="0.25"/>
  <testcase classname="tests.spec.test_c" name="test_x" time="3"/>
  <testcase classname="tests.spec.test_c" name="test_skipped"><skipped/></testcase>
  <testcase classname="tests.gone" name="test_removed_file" time="99"/>
</testsuite></testsuites>
"""


def test_durations_add_up_per_file_from_pytest_classnames():
    assert junit_durations(PYTEST_XML, FILES) == {
        "tests/test_a.py": 15.0,
        "tests/test_b.py": 0.25,
        "tests/spec/test_c.py": 3.0,
    }


def test_durations_use_the_file_attribute_when_there_is_one():
    xml = '<testsuite><testcase file="./tests/spec/test_d.py" classname="x" time="2"/></testsuite>'
    assert junit_durations(xml, FILES) == {"tests/spec/test_d.py": 2.0}


def test_module_names_match_files_given_under_another_root():
    files = ["/repo/tests/test_a.py"]
    assert junit_durations(PYTEST_XML, files) == {"/repo/tests/test_a.py": 15.0}


def test_an_ambiguous_short_name_matches_nothing():
    files = ["a/test_x.py", "b/test_x.py"]
    xml = (
        '<testsuite><testcase classname="test_x" time="5"/>'
        '<testcase classname="b.test_x" time="1"/></testsuite>'
    )
    assert junit_durations(xml, files) == {"b/test_x.py": 1.0}


def test_text_that_is_not_xml_is_an_error():
    with pytest.raises(ValueError, match="not a JUnit XML report"):
        junit_durations("<testsuite", FILES)


def test_round_robin_deals_sorted_names():
    assert round_robin(FILES, 3) == [
        ["tests/spec/test_c.py", "tests/test_b.py"],
        ["tests/spec/test_d.py"],
        ["tests/test_a.py"],
    ]


def test_balanced_puts_the_long_file_alone():
    durations = {"a": 10.0, "b": 4.0, "c": 3.0, "d": 3.0}
    assert balanced(durations, 2) == [["a"], ["b", "c", "d"]]
    assert makespan(balanced(durations, 2), durations) == 10.0


def test_split_without_durations_is_round_robin():
    result = split(FILES, 2)
    assert result.method == ROUND_ROBIN
    assert [list(s) for s in result.shards] == round_robin(FILES, 2)


def test_unknown_files_count_as_the_median_known_file():
    result = split(["a", "b", "c", "new"], 2, {"a": 10.0, "b": 1.0, "c": 3.0})
    assert result.method == BALANCED
    assert result.shards == (("a",), ("b", "c", "new"))
    assert result.expected_seconds == (10.0, 7.0)


def test_zero_shards_is_an_error():
    with pytest.raises(ValueError, match="at least 1"):
        split(FILES, 0)


@given(
    st.dictionaries(st.text("abcdef", min_size=1, max_size=4), st.floats(0, 1000), min_size=1, max_size=40),
    st.integers(1, 8),
    st.randoms(),
)
def test_every_file_is_in_exactly_one_shard_whatever_the_order(durations, total, rng):
    files = list(durations)
    rng.shuffle(files)
    result = split(files, total, durations)
    assert sorted(f for shard in result.shards for f in shard) == sorted(durations)
    assert result == split(sorted(files), total, dict(sorted(durations.items())))
    # greedy list scheduling: never worse than the average load plus the longest file
    average = sum(durations.values()) / total
    assert makespan(result.shards, durations) <= average + max(durations.values()) + 1e-6


@pytest.fixture
def suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tests folder with four test files (and a helper that is not one), as the working directory."""
    for file in [*FILES, "tests/helpers.py"]:
        (tmp_path / file).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / file).write_text("")
    monkeypatch.chdir(tmp_path)
    for var in ("HANDSOFF_SHARD_INDEX", "HANDSOFF_SHARD_TOTAL"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def _shard(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(["shard", *args])
    out, err = capsys.readouterr()
    return code, out.split(), err


def test_cli_prints_one_balanced_shard(suite, capsys):
    (suite / "last.xml").write_text(PYTEST_XML)
    shards = [_shard(capsys, "--index", str(i), "--total", "2", "--junit", "last.xml")[1] for i in range(2)]
    assert shards == [
        ["tests/test_a.py"],
        ["tests/spec/test_c.py", "tests/spec/test_d.py", "tests/test_b.py"],
    ]


def test_cli_takes_index_and_total_from_the_shard_task_environment(suite, capsys, monkeypatch):
    monkeypatch.setenv("HANDSOFF_SHARD_INDEX", "1")
    monkeypatch.setenv("HANDSOFF_SHARD_TOTAL", "4")
    assert _shard(capsys, "tests") == (0, ["tests/spec/test_d.py"], "")


def test_cli_without_the_xml_falls_back_to_round_robin(suite, capsys):
    code, files, err = _shard(capsys, "--index", "0", "--total", "2", "--junit", "missing.xml", "--verbose")
    assert code == 0
    assert files == ["tests/spec/test_c.py", "tests/test_a.py"]
    assert "splitting round robin" in err and "(round-robin)" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--index", "2", "--total", "2"], "shard index 2 is not in 0..1"),
        ([], "give --index and --total"),
        (["--index", "0", "--total", "1", "nowhere"], "no such file or folder"),
    ],
)
def test_cli_usage_errors_exit_2(suite, capsys, args, message):
    code, _, err = _shard(capsys, *args)
    assert code == 2
    assert message in err
