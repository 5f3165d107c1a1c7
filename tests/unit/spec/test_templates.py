"""extends and the merge rule: by name, replace, remove, chains, cycles and escapes."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from handsoff.spec import SpecErrors, load_all, load_pipeline
from handsoff.spec.templates import TemplateSet, merge
from hypothesis import given, settings
from hypothesis import strategies as st

DEPLOY = {"type": "command", "deploy": "./deploy.sh", "rollback": "./rollback.sh"}
FLEET = {
    "source": {"repo": "/srv/git/app.git"},
    "deploy": DEPLOY,
    "bake": "1h",
    "stages": [
        {
            "name": "alpha",
            "waves": [{"name": "alpha", "targets": [{"name": "alpha", "region": "us-west-2"}]}],
        },
        {"name": "beta", "waves": [{"name": "beta", "targets": [{"name": "beta", "region": "us-west-2"}]}]},
        {
            "name": "gamma",
            "waves": [{"name": "gamma", "targets": [{"name": "gamma", "region": "us-east-1"}]}],
        },
    ],
}
BUILD = {"artifact": "dist/app.zip"}


def merged(base: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    result, issues = merge(base, layer, "layer.json")
    assert issues == []
    return result


def issue_lines(errors) -> list[str]:
    return [str(issue) for issue in errors]


def test_named_lists_merge_by_name_in_place_and_append_new_names():
    base = {"stages": [{"name": "a", "bake": "1h", "tests": []}, {"name": "b"}]}
    layer = {"stages": [{"name": "c"}, {"name": "a", "bake": "2h"}]}

    assert merged(base, layer) == {
        "stages": [{"name": "a", "bake": "2h", "tests": []}, {"name": "b"}, {"name": "c"}]
    }


def test_named_entries_merge_recursively():
    base = {"stages": [{"name": "a", "waves": [{"name": "w1", "bake": "1h"}, {"name": "w2"}]}]}
    layer = {"stages": [{"name": "a", "waves": [{"name": "w2", "bake": "5m"}]}]}

    assert merged(base, layer) == {
        "stages": [{"name": "a", "waves": [{"name": "w1", "bake": "1h"}, {"name": "w2", "bake": "5m"}]}]
    }


def test_objects_merge_key_by_key_and_scalars_replace():
    base = {"source": {"repo": "r", "branch": "main"}, "bake": "1h"}

    assert merged(base, {"source": {"branch": "release"}, "bake": "2h"}) == {
        "source": {"repo": "r", "branch": "release"},
        "bake": "2h",
    }


def test_plain_lists_and_empty_lists_replace():
    base = {"tags": ["a", "b"], "owners": ["x"], "stages": [{"name": "s", "tests": [{"name": "t"}]}]}
    layer = {"tags": ["c"], "owners": [], "stages": [{"name": "s", "tests": []}]}

    assert merged(base, layer) == {"tags": ["c"], "owners": [], "stages": [{"name": "s", "tests": []}]}


def test_remove_deletes_the_inherited_entry_and_a_later_entry_can_add_it_back():
    base = {"stages": [{"name": "a", "bake": "1h"}, {"name": "b"}, {"name": "c"}]}
    layer = {"stages": [{"name": "a", "remove": True}, {"name": "c", "remove": True}, {"name": "a"}]}

    assert merged(base, layer) == {"stages": [{"name": "b"}, {"name": "a"}]}


def test_remove_of_nothing_is_an_error_at_the_entry():
    result, issues = merge(
        {"stages": [{"name": "a"}]}, {"stages": [{"name": "b"}, {"name": "gamma", "remove": True}]}, "p.json"
    )

    assert issue_lines(issues) == ["p.json: $.stages[1]: removes 'gamma' but nothing inherited has that name"]
    assert result == {"stages": [{"name": "a"}, {"name": "b"}]}


def test_merge_runs_without_a_base_and_catches_nested_stray_removes():
    layer = {"stages": [{"name": "a", "waves": [{"name": "w"}, {"name": "old", "remove": True}]}]}

    _, issues = merge({}, layer, "p.json")

    assert issue_lines(issues) == [
        "p.json: $.stages[0].waves[1]: removes 'old' but nothing inherited has that name"
    ]


def test_a_repeated_name_in_one_layer_stays_visible_as_a_duplicate():
    assert merged({"stages": [{"name": "a", "bake": "1h"}]}, {"stages": [{"name": "a"}, {"name": "a"}]}) == {
        "stages": [{"name": "a", "bake": "1h"}, {"name": "a"}]
    }


def test_extends_is_not_inherited():
    assert merged({"extends": ["t.json"], "bake": "1h"}, {"extends": ["u.json"]}) == {
        "extends": ["u.json"],
        "bake": "1h",
    }
    assert merged({"extends": ["t.json"], "bake": "1h"}, {}) == {"bake": "1h"}


def test_merge_never_modifies_its_inputs():
    base = copy.deepcopy(FLEET)
    layer = {
        "stages": [
            {"name": "beta", "remove": True},
            {"name": "alpha", "waves": [{"name": "alpha", "bake": "5m"}]},
        ]
    }
    before = (copy.deepcopy(base), copy.deepcopy(layer))

    result = merged(base, layer)

    assert (base, layer) == before
    assert [stage["name"] for stage in result["stages"]] == ["alpha", "gamma"]
    assert result["stages"][0]["waves"][0] == {
        "name": "alpha",
        "bake": "5m",
        "targets": FLEET["stages"][0]["waves"][0]["targets"],
    }


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["name", "a", "b"]), inner, max_size=3)
    ),
    max_leaves=20,
)


@settings(max_examples=60)
@given(
    st.dictionaries(st.text(max_size=3), _json, max_size=4),
    st.dictionaries(st.text(max_size=3), _json, max_size=4),
)
def test_merge_property_inputs_unchanged_and_layer_keys_win(base, layer):
    base.pop("extends", None)
    layer.pop("extends", None)
    before = json.dumps([base, layer], sort_keys=True)

    result, _ = merge(base, layer, "p.json")

    assert json.dumps([base, layer], sort_keys=True) == before
    assert set(result) == set(base) | set(layer)


# --- extends on disk ---------------------------------------------------------------------------


def test_template_chain_merges_depth_first_then_the_spec(specs):
    specs.write("templates/fleet.json", {**FLEET, "tags": ["fleet"], "description": "fleet"})
    specs.write(
        "templates/service.json", {"extends": ["templates/fleet.json"], "tags": ["service"], "bake": "2h"}
    )
    specs.write("templates/team.json", {"owners": ["team"], "description": "team"})
    path = specs.write(
        "app.json",
        {
            "pipeline": "app",
            "extends": ["templates/service.json", "templates/team.json"],
            "build": BUILD,
            "stages": [{"name": "beta", "remove": True}, {"name": "alpha", "bake": "5m"}],
        },
    )

    pipeline = load_pipeline(path)

    assert (pipeline.tags, pipeline.owners, pipeline.description) == (("service",), ("team",), "team")
    assert [stage.name for stage in pipeline.stages] == ["alpha", "gamma"]
    assert [stage.bake.total_seconds() if stage.bake else None for stage in pipeline.stages] == [300, None]
    assert pipeline.stages[1].waves[0].bake.total_seconds() == 7200  # service.json's bake over fleet.json's


def test_diamond_applies_a_shared_template_once_at_its_first_place(specs):
    specs.write("templates/base.json", {**FLEET, "bake": "1h"})
    specs.write("templates/left.json", {"extends": ["templates/base.json"], "bake": "2h"})
    specs.write("templates/right.json", {"extends": ["templates/base.json"], "tags": ["right"]})
    path = specs.write(
        "app.json",
        {"pipeline": "app", "extends": ["templates/left.json", "templates/right.json"], "build": BUILD},
    )
    templates = TemplateSet(specs.root)

    layers, issues = templates.layers(path, json.loads(path.read_text()))

    assert issues == []
    assert [layer.file for layer in layers] == [
        str(specs.root / "templates" / name) for name in ("base.json", "left.json", "right.json")
    ]
    assert load_pipeline(path).stages[0].waves[0].bake.total_seconds() == 7200  # base not re-applied


def test_templates_are_read_once_per_template_set(specs):
    specs.write("templates/fleet.json", FLEET)
    documents = [{"pipeline": f"p{i}", "extends": ["templates/fleet.json"], "build": BUILD} for i in range(2)]
    templates = TemplateSet(specs.root)

    first, _ = templates.layers(specs.write("p0.json", documents[0]), documents[0])
    second, _ = templates.layers(specs.write("p1.json", documents[1]), documents[1])

    assert first[0] is second[0]


def test_cycle_is_reported_with_its_chain(specs):
    specs.write("templates/a.json", {"extends": ["templates/b.json"]})
    specs.write("templates/b.json", {"extends": ["templates/a.json"]})
    path = specs.write("app.json", {"pipeline": "app", "extends": ["templates/a.json"], "build": BUILD})

    with pytest.raises(SpecErrors) as caught:
        load_pipeline(path)

    chain = "templates/a.json -> templates/b.json -> templates/a.json"
    assert issue_lines(caught.value.issues) == [
        f"{specs.root / 'templates/b.json'}: $.extends[0]: extends cycle: {chain}"
    ]


def test_a_spec_extending_itself_is_a_cycle(specs):
    path = specs.write("app.json", {"pipeline": "app", "extends": ["app.json"], "build": BUILD})

    with pytest.raises(SpecErrors) as caught:
        load_pipeline(path)

    assert issue_lines(caught.value.issues) == [f"{path}: $.extends[0]: extends cycle: app.json -> app.json"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "templates/missing.json",
            "template 'templates/missing.json' not found under the specs root {root!r}",
        ),
        ("../../etc/passwd", "template '../../etc/passwd' is outside the specs root {root!r}"),
        ("/etc/passwd", "template path '/etc/passwd' must be relative to the specs root"),
        ("templates/escape.json", "template 'templates/escape.json' is outside the specs root {root!r}"),
    ],
    ids=["missing", "dot-dot", "absolute", "symlink"],
)
def test_bad_extends_entry_is_reported_at_its_index(specs, tmp_path, entry, message):
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps(FLEET))
    (specs.root / "templates" / "escape.json").symlink_to(outside)
    path = specs.write(
        "app.json", {"pipeline": "app", "extends": ["templates/service.json", entry], "build": BUILD}
    )

    errors = load_all(specs.root).errors

    assert issue_lines(errors) == [f"{path}: $.extends[1]: {message.format(root=str(specs.root))}"]


def test_symlink_inside_the_root_is_fine(specs):
    specs.write("templates/fleet.json", FLEET)
    (specs.root / "templates" / "alias.json").symlink_to(specs.root / "templates" / "fleet.json")
    path = specs.write("app.json", {"pipeline": "app", "extends": ["templates/alias.json"], "build": BUILD})

    assert [stage.name for stage in load_pipeline(path).stages] == ["alpha", "beta", "gamma"]


def test_error_inside_a_template_names_the_template_and_skips_the_merged_checks(specs):
    template = specs.write(
        "templates/fleet.json", {**FLEET, "bake": "an hour", "stages": [{"name": "a", "wavse": []}]}
    )
    path = specs.write(
        "app.json", {"pipeline": "app", "extends": ["templates/fleet.json"]}
    )  # no build: not reported

    with pytest.raises(SpecErrors) as caught:
        load_pipeline(path)

    assert issue_lines(caught.value.issues) == [
        f"{template}: $.bake: 'an hour' is not a duration like 30s, 5m, 1h or 2d",
        f"{template}: $.stages[0].wavse: unknown key 'wavse' (did you mean 'waves'?)",
    ]


def test_broken_template_is_reported_once_for_all_the_pipelines_using_it(specs):
    template = specs.write("templates/fleet.json", "{not json")
    for name in ("a", "b"):
        specs.write(f"{name}.json", {"pipeline": name, "extends": ["templates/fleet.json"], "build": BUILD})

    result = load_all(specs.root)

    assert result.pipelines == {}
    assert issue_lines(result.errors) == [
        f"{template}: $: invalid JSON at line 1 column 2: Expecting property name enclosed in double quotes"
    ]


def test_stray_remove_in_a_template_names_the_template(specs):
    template = specs.write(
        "templates/fleet.json", {**FLEET, "stages": [*FLEET["stages"], {"name": "delta", "remove": True}]}
    )
    path = specs.write("app.json", {"pipeline": "app", "extends": ["templates/fleet.json"], "build": BUILD})

    with pytest.raises(SpecErrors) as caught:
        load_pipeline(path)

    assert issue_lines(caught.value.issues) == [
        f"{template}: $.stages[3]: removes 'delta' but nothing inherited has that name"
    ]


def test_matched_remove_entry_with_other_keys_is_an_error(specs):
    specs.write("templates/fleet.json", FLEET)
    path = specs.write(
        "app.json",
        {
            "pipeline": "app",
            "extends": ["templates/fleet.json"],
            "build": BUILD,
            "stages": [{"name": "beta", "remove": True, "bake": "1h"}],
        },
    )

    with pytest.raises(SpecErrors) as caught:
        load_pipeline(path)

    message = "unknown key 'bake': an entry with \"remove\": true takes only 'name' and 'remove'"
    assert issue_lines(caught.value.issues) == [f"{path}: $.stages[0].bake: {message}"]


def test_merged_document_errors_are_reported_at_the_spec_files_own_paths(specs):
    specs.write("templates/fleet.json", FLEET)
    path = specs.write(
        "app.json",
        {
            "pipeline": "app",
            "extends": ["templates/fleet.json"],
            "build": BUILD,
            "stages": [{"name": "delta"}, {"name": "beta", "bake": "soon"}],
        },
    )

    with pytest.raises(SpecErrors) as caught:
        load_pipeline(path)

    assert issue_lines(caught.value.issues) == [  # merged: beta is $.stages[1], delta $.stages[3]
        f"{path}: $.stages[0]: missing required key 'waves'",
        f"{path}: $.stages[1].bake: 'soon' is not a duration like 30s, 5m, 1h or 2d",
    ]


def test_errors_only_templates_wrote_keep_the_merged_path_and_say_so(specs):
    fleet = copy.deepcopy(FLEET)
    fleet["stages"].append({"name": "delta"})  # fine in a template; the merged pipeline lacks waves
    fleet["deploy"]["rollback"] = "./rollback.sh ${target.zone}"
    specs.write("templates/fleet.json", fleet)
    path = specs.write(
        "app.json",
        {
            "pipeline": "app",
            "extends": ["templates/fleet.json"],
            "build": BUILD,
            "stages": [{"name": "beta", "waves": [{"name": "beta", "targets": [{"name": "alpha"}]}]}],
        },
    )
    merged_note = " (in the document merged with its templates)"

    assert issue_lines(load_all(specs.root).errors) == [
        f"{path}: $.stages[3]: missing required key 'waves'{merged_note}",
    ]
    fleet["stages"].pop()
    specs.write("templates/fleet.json", fleet)
    placeholder = "$.deploy.rollback: unknown placeholder ${target.zone}"
    duplicate = (
        "$.stages[0].waves[0].targets[0].name: duplicate target name 'alpha' (first used in a template)"
    )
    assert issue_lines(load_all(specs.root).errors) == [
        f"{path}: {placeholder} (for target 'alpha'){merged_note}",
        f"{path}: {placeholder} (for target 'beta'){merged_note}",
        f"{path}: {placeholder} (for target 'gamma'){merged_note}",
        f"{path}: {duplicate}",
    ]


def test_specs_root_defaults_to_the_spec_folder_and_can_be_given(specs):
    specs.write("templates/fleet.json", FLEET)
    path = specs.write(
        "team/app.json", {"pipeline": "app", "extends": ["templates/fleet.json"], "build": BUILD}
    )

    assert load_pipeline(path, specs.root).id == "app"
    with pytest.raises(SpecErrors, match="not found under the specs root"):
        load_pipeline(path)
