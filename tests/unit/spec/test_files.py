"""Reading spec files, finding them, finding one pipeline's file, and duplicate ids across files."""

from __future__ import annotations

import gc
import subprocess
from pathlib import Path

import pytest
from handsoff.spec import SpecErrors, find_spec_files, load_all, load_pipeline, pipeline_file_for
from handsoff.spec.files import read_spec, specs_root_for

DEPLOY = {"type": "command", "deploy": "./deploy.sh", "rollback": "./rollback.sh"}


def spec(pipeline_id: str) -> dict:
    target = {"name": f"{pipeline_id}-t", "region": "us-east-1"}
    return {
        "pipeline": pipeline_id,
        "source": {"repo": "/srv/git/app.git"},
        "build": {"artifact": "dist/app.zip"},
        "deploy": DEPLOY,
        "stages": [{"name": "prod", "waves": [{"name": "all", "targets": [target]}]}],
    }


def read_error(path: Path) -> str:
    with pytest.raises(SpecErrors) as caught:
        read_spec(path)
    [issue] = caught.value.issues
    assert (issue.file, issue.path) == (str(path), "$")
    return issue.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{\n  "pipeline": "x",\n  "source": {}\n  "build": {}\n}',
            "invalid JSON at line 4 column 3: Expecting ',' delimiter",
        ),
        ("", "empty file"),
        ("  \n\t\n", "empty file"),
        ("[1, 2]", "the top level must be a JSON object, not an array"),
        ('"text"', "the top level must be a JSON object, not a string"),
        ("null", "the top level must be a JSON object, not null"),
        ('{"bake": "1h", "bake": "2h"}', "invalid JSON: key 'bake' appears twice in one object"),
        ('{"a": 1} trailing', "invalid JSON at line 1 column 10: Extra data"),
    ],
    ids=["malformed", "empty", "blank", "array", "string", "null", "duplicate-key", "extra-data"],
)
def test_unreadable_content_is_one_issue_at_the_document(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)

    assert read_error(path) == message


def test_deeply_nested_json_is_an_error_not_a_crash(specs):
    too_deep = specs.write("a.json", '{"description": ' + "[" * 100_000 + "]" * 100_000 + "}")
    deep = specs.write("b.json", '{"x": ' + '{"a": ' * 600 + "1" + "}" * 600 + "}")

    assert [str(issue) for issue in load_all(specs.root).errors] == [
        f"{too_deep}: $: invalid JSON: nested too deeply",
        f"{deep}: $: the document is nested too deeply",
    ]


def test_file_over_one_mib_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.json"
    subprocess.run(["truncate", "-s", "50M", str(path)], check=True)  # sparse: instant, no disk used

    assert read_error(path) == "spec file is 52428800 bytes; the limit is 1048576"


def test_file_of_exactly_one_mib_is_read(tmp_path):
    path = tmp_path / "big.json"
    path.write_text('{"description": "' + "x" * (1024 * 1024 - 19) + '"}')

    assert path.stat().st_size == 1024 * 1024
    assert len(read_spec(path)["description"]) == 1024 * 1024 - 19


def test_invalid_utf8_is_a_clear_error(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes('{"description": "café"}'.encode("latin-1"))

    assert read_error(path) == "not UTF-8: byte 0xe9 at offset 20"


def test_a_folder_named_like_a_spec_cannot_be_read(tmp_path):
    (tmp_path / "dir.json").mkdir()

    assert read_error(tmp_path / "dir.json") == "cannot read the file: Is a directory"


def test_utf8_content_is_read(tmp_path):
    path = tmp_path / "utf8.json"
    path.write_text('{"description": "Bestellungen – café ☕"}', encoding="utf-8")

    assert read_spec(path) == {"description": "Bestellungen – café ☕"}


def test_load_pipeline_reports_file_errors_as_spec_errors(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{")

    with pytest.raises(SpecErrors) as caught:
        load_pipeline(path)

    assert (
        str(caught.value)
        == f"{path}: $: invalid JSON at line 1 column 2: Expecting property name enclosed in double quotes"
    )


def test_find_spec_files_recurses_sorted_and_skips_only_the_root_templates(specs):
    for relative in (
        "b.json",
        "a.json",
        "team/z.json",
        "team/templates/t.json",
        "notes.txt",
        "templates/x.json",
    ):
        specs.write(relative, {})

    assert find_spec_files(specs.root) == [
        specs.root / "a.json",
        specs.root / "b.json",
        specs.root / "team/templates/t.json",
        specs.root / "team/z.json",
    ]


def test_find_spec_files_of_a_missing_folder_is_empty(tmp_path):
    assert find_spec_files(tmp_path / "nope") == []


def test_pipeline_file_for_finds_by_file_name_first_then_by_content(specs):
    direct = specs.write("orders.json", spec("orders"))
    nested = specs.write("team/billing.json", spec("billing"))
    renamed = specs.write("team/legacy-name.json", spec("payments"))
    specs.write("templates/payments.json", spec("payments"))  # templates never define pipelines
    specs.write("broken.json", "{")

    assert pipeline_file_for(specs.root, "orders") == direct
    assert pipeline_file_for(specs.root, "billing") == nested
    assert pipeline_file_for(specs.root, "payments") == renamed
    assert pipeline_file_for(specs.root, "missing") is None


def test_pipeline_file_for_checks_the_id_inside_a_matching_file_name(specs):
    specs.write("orders.json", spec("something-else"))
    real = specs.write("team/x.json", spec("orders"))

    assert pipeline_file_for(specs.root, "orders") == real


def test_pipeline_file_for_sees_an_id_written_with_json_escapes(specs):
    path = specs.write("x.json", '{"pipeline": "\\u006frders"}')

    assert pipeline_file_for(specs.root, "orders") == path


def test_specs_root_for_a_lone_file_is_the_nearest_folder_with_templates(specs, tmp_path):
    nested = specs.write("team/app.json", spec("app"))
    lone = tmp_path / "elsewhere" / "app.json"
    lone.parent.mkdir()
    lone.write_text("{}")

    assert specs_root_for(nested) == specs.root
    assert specs_root_for(specs.root / "app.json") == specs.root
    assert specs_root_for(lone) == lone.parent


def test_duplicate_pipeline_ids_fail_every_file_involved(specs):
    first = specs.write("a.json", spec("orders"))
    second = specs.write("team/b.json", spec("orders"))
    third = specs.write("team/c.json", {**spec("orders"), "bake": "bad"})  # broken, but still claims the id
    specs.write("ok.json", spec("billing"))

    result = load_all(specs.root)

    assert list(result.pipelines) == ["billing"]
    assert [str(issue) for issue in result.errors] == [
        f"{first}: $.pipeline: pipeline id 'orders' is also defined in {second}, {third}",
        f"{second}: $.pipeline: pipeline id 'orders' is also defined in {first}, {third}",
        f"{third}: $.bake: 'bad' is not a duration like 30s, 5m, 1h or 2d",
        f"{third}: $.pipeline: pipeline id 'orders' is also defined in {first}, {second}",
    ]


def test_load_all_keeps_valid_pipelines_next_to_broken_ones(specs):
    specs.write("a.json", spec("a"))
    broken = specs.write("b.json", {**spec("b"), "stages": []})

    result = load_all(specs.root)

    assert list(result.pipelines) == ["a"]
    assert [str(issue) for issue in result.errors] == [f"{broken}: $.stages: [] should be non-empty"]


def test_load_all_of_a_missing_folder_is_an_error(tmp_path):
    result = load_all(tmp_path / "nope")

    assert (result.pipelines, [str(issue) for issue in result.errors]) == (
        {},
        [f"{tmp_path / 'nope'}: $: specs folder not found"],
    )


def test_load_all_of_an_empty_folder_is_empty(tmp_path):
    result = load_all(tmp_path)

    assert (result.pipelines, result.errors) == ({}, [])


def test_unreadable_file_is_a_clear_error(tmp_path):
    path = tmp_path / "folder.json"  # a folder named like a spec: reading it fails (as root too)
    path.mkdir()

    assert read_error(path).startswith("cannot read the file: ")


def test_load_all_restores_the_garbage_collector_state(specs):
    specs.write("a.json", spec("a"))
    assert gc.isenabled()

    assert list(load_all(specs.root).pipelines) == ["a"]
    assert gc.isenabled()
    gc.disable()
    try:
        load_all(specs.root)
        assert not gc.isenabled()
    finally:
        gc.enable()
