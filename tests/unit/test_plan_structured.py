"""Structured profile changes are a real diff in every form, never truncated, and the markdown names its base
(issue 15, Deliver 5): a licence-policy relaxation must be visible in the table, the JSON and the PR comment."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from composer.gitops import render
from composer.gitops.plan import Plan, ProfileChange, value_diff
from tests.conftest import REPO
from tests.unit.test_plan_render import BASE_ROWS, HEAD, lines_of, lock, make_plan, old_state, profile, state

LONG = [f"LicenseRef-vendor-{i:02d}" for i in range(12)]  # far more than any width a renderer might cut at


@pytest.fixture
def relaxed() -> Plan:
    """allowed-licenses gains Apache-2.0 and the 12 long refs, loses MIT; a new key; a kernel cmdline change."""
    doc = profile(policy={"allowed-licenses": ["GPL-2.0-only", "GPL-2.0-or-later", "Apache-2.0", *LONG],
                          "denied-packages": ["telnetd"]},
                  kernel={"package": "linux", "cmdline": "quiet console=ttyS0"})
    return make_plan(old_state(), state(doc, lock(BASE_ROWS)))


def test_value_diff_is_item_and_key_wise() -> None:
    assert value_diff("policy", {"a": [1, 2], "b": True}, {"a": [2, 3], "c": "x"}) == [
        ProfileChange(path="policy.a[3]", action="add", new=3),
        ProfileChange(path="policy.a[1]", action="remove", old=1),
        ProfileChange(path="policy.b", action="remove", old=True),
        ProfileChange(path="policy.c", action="add", new="x")]
    assert value_diff("x", [1, 1], [1]) == [ProfileChange(path="x", action="change", old=[1, 1], new=[1])]  # not a set
    assert value_diff("x", "a", {"k": 1}) == [ProfileChange(path="x", action="change", old="a", new={"k": 1})]


def test_table_shows_each_item_and_key(relaxed: Plan) -> None:
    out = lines_of(render.table(relaxed))
    assert "+ policy.allowed-licenses[Apache-2.0]" in out
    assert "- policy.allowed-licenses[MIT]" in out
    assert all(f"+ policy.allowed-licenses[{r}]" in out for r in LONG)
    assert "+ policy.denied-packages[telnetd]" in out
    assert "~ kernel.cmdline: quiet -> quiet console=ttyS0" in out
    assert not any("..." in x for x in out)


def test_markdown_and_json_show_the_same_diff(relaxed: Plan) -> None:
    md = render.markdown(relaxed)
    assert "- `- policy.allowed-licenses[MIT]`" in md and "- `+ policy.allowed-licenses[Apache-2.0]`" in md
    assert "..." not in md
    doc = json.loads(render.to_json(relaxed))
    schema = json.loads((REPO / "schemas" / "plan.schema.json").read_text())
    Draft202012Validator(schema).validate(doc)
    changes = {(c["path"], c["action"]) for c in doc["profiles"][0]["profile_changes"]}
    assert {("policy.allowed-licenses[MIT]", "remove"), ("policy.allowed-licenses[Apache-2.0]", "add"),
            ("kernel.cmdline", "change")} <= changes


def test_a_long_value_is_never_shortened() -> None:
    text = "x" * 300
    plan = make_plan(old_state(), state(profile(description=text), lock(BASE_ROWS)))
    assert f"~ description: Kernel, init, busybox and base files. -> {text}" in lines_of(render.table(plan))


@pytest.mark.parametrize(("base", "shown"), [
    ({"ref": "origin/main"}, "Base: `origin/main`;"),
    ({"ref": "", "commit": "a" * 40, "description": "HEAD^ (the last commit)"},
     "Base: HEAD^ (the last commit) (commit `aaaaaaaaaaaa`);"),
    ({"ref": "", "commit": "", "description": "(none before the profiles' first commit)"},
     "Base: no previous commit (none before the profiles' first commit): every profile is new;"),
    ({"ref": "", "commit": "", "description": ""}, "Base: no previous commit: every profile is new;"),
])
def test_markdown_names_its_base(relaxed: Plan, base: dict[str, str], shown: str) -> None:
    plan = Plan(base=base, head={"commit": HEAD, "worktree": "clean"}, profiles=relaxed.profiles)
    md = render.markdown(plan)
    assert shown in md, md
    assert "Base: ;" not in md
