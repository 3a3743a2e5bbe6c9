"""Plans rendered as a table, markdown, JSON (checked against schemas/plan.schema.json) and a CI matrix.

The plans are real: ``plan_profile`` over small in-memory states shaped like profiles/minimal.yaml and its lock.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from composer.errors import UserError
from composer.gitops import render
from composer.gitops.plan import (
    EXIT_CHANGES,
    EXIT_CODES,
    EXIT_ERROR,
    EXIT_NO_CHANGES,
    EXIT_POLICY,
    Plan,
    ProfilePlan,
    State,
    plan_profile,
)
from composer.profile.load import profile_of
from composer.solve.lockmodel import Lock
from tests.conftest import REPO

KIB, MIB = 1 << 10, 1 << 20
BASE = "1234567" + "0" * 33
HEAD = "89abcde" + "f" * 33
INDEX_OLD = {"sample": {"x86_64": "a" * 64}}
INDEX_NEW = {"sample": {"x86_64": "b" * 64}}
BUILT = {"x86_64": {"outputs": [{"name": "iso", "files": [{"size": 20 * MIB}]},
                                {"name": "disk", "files": [{"size": 30 * MIB}, {"size": 1 * MIB}]}]}}


def row(name: str, version: str, reason: str = "requested", *, size: int = 100 * KIB, license: str = "MIT",
        capabilities: tuple[str, ...] = ()) -> dict[str, Any]:
    """A lock row as `vcomp lock` writes it; the sha256 follows the version (a new version is a new file)."""
    return {"name": name, "version": version, "arch": "x86_64",
            "sha256": hashlib.sha256(f"{name}-{version}".encode()).hexdigest(),
            "size": size, "repository": "sample", "signer": "c" * 64, "reason": reason, "license": license,
            "capabilities": list(capabilities)}


BASE_ROWS = [row("base-files", "12.4.0", size=8 * KIB, license="GPL-2.0-or-later"),
             row("busybox", "1.35.0", size=980 * KIB, license="GPL-2.0-only"),
             row("driver-virtio", "6.1.0", "dependency of driver-virtio-blk", size=50 * KIB, license="GPL-2.0-only"),
             row("driver-virtio-blk", "6.1.0", "driver for virtio-blk", size=60 * KIB, license="GPL-2.0-only"),
             row("init", "1.0.0", size=20 * KIB),
             row("linux", "6.1.0", "kernel", size=8 * MIB, license="GPL-2.0-only")]


def profile(*, packages: tuple[str, ...] = ("base-files", "busybox", "init"), **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "minimal", "description": "Kernel, init, busybox and base files.",
        "architectures": ["x86_64"],
        "repositories": [{"name": "sample", "url": "../images/repo", "root": "trust/sample-root.json"}],
        "packages": list(packages), "drivers": ["virtio-blk"],
        "kernel": {"package": "linux", "cmdline": "quiet"}, "init": "init", "hostname": "minimal",
        "outputs": [{"type": "iso"}, {"type": "disk", "options": {"format": "qcow2", "filesystem": "ext4"}}],
        "policy": {"allowed-licenses": ["GPL-2.0-only", "GPL-2.0-or-later", "MIT"]}}
    doc.update(extra)
    return doc


def lock(rows: list[dict[str, Any]], indexes: Mapping[str, Any] = INDEX_OLD) -> dict[str, Any]:
    return {"format": 1, "profile": "minimal", "inputs": "d" * 64, "indexes": dict(indexes),
            "trust-roots": {"sample": "e" * 64}, "architectures": {"x86_64": sorted(rows, key=lambda r: r["name"])}}


def state(profile_doc: dict[str, Any] | None, lock_doc: dict[str, Any] | None) -> State:
    def digest(doc: Any) -> str:
        return hashlib.sha256(repr(doc).encode()).hexdigest() if doc is not None else ""
    model = None if profile_doc is None else profile_of(yaml.safe_dump(profile_doc).encode(),
                                                        REPO / "profiles" / "p.yaml", files=False)
    locked = None if lock_doc is None else Lock.from_dict(lock_doc, "p.lock")
    return State(profile=model, lock=locked, profile_digest=digest(profile_doc), lock_digest=digest(lock_doc))


def make_plan(old: State, new: State, *, path: str = "profiles/minimal.yaml", base: str = BASE,
              acknowledged: tuple[str, ...] = ()) -> Plan:
    p = plan_profile(path, old, new, BUILT, base=base, acknowledged=acknowledged)
    return plan_of(p, acknowledged=acknowledged)


def plan_of(*profiles: ProfilePlan, acknowledged: tuple[str, ...] = ()) -> Plan:
    return Plan(base={"ref": "origin/main"}, head={"commit": HEAD, "worktree": "clean"}, profiles=profiles,
                acknowledged=acknowledged)


NANO_ROWS = [row("nano", "7.2.0", size=600 * KIB, license="GPL-2.0-or-later"),
             row("libncursesw6", "6.4.0", "dependency of nano", size=300 * KIB),
             row("libtinfo6", "6.4.0", "dependency of libncursesw6", size=200 * KIB)]


def old_state() -> State:
    return state(profile(), lock(BASE_ROWS))


def nano_state() -> State:
    """nano asked for (with its two libraries); busybox upgraded by a repository update; init removed."""
    rows = [r for r in BASE_ROWS if r["name"] not in ("busybox", "init")]
    rows += [*NANO_ROWS, row("busybox", "1.36.0", size=1000 * KIB, license="GPL-2.0-only")]
    return state(profile(packages=("base-files", "busybox", "nano")), lock(rows, INDEX_NEW))


@pytest.fixture
def nano_plan() -> Plan:
    return make_plan(old_state(), nano_state())


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads((REPO / "schemas" / "plan.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def lines_of(text: str) -> list[str]:
    return [x.strip() for x in text.splitlines()]


# ---------------------------------------------------------------- the table


def test_table_shows_the_added_package_and_each_dependency_it_pulls_in(nano_plan: Plan) -> None:
    out = lines_of(render.table(nano_plan))
    assert any(x.startswith("+ nano 7.2.0 (requested)") and x.endswith("+600.0 KiB") for x in out)
    assert any(x.startswith("+ libncursesw6 6.4.0 (dependency of nano)") for x in out)
    assert any(x.startswith("+ libtinfo6 6.4.0 (dependency of libncursesw6)") for x in out)
    asked, deps = out.index("asked for:"), out.index("dependencies:")
    assert asked < next(i for i, x in enumerate(out) if x.startswith("+ nano ")) < deps
    assert deps < next(i for i, x in enumerate(out) if x.startswith("+ libtinfo6 "))


def test_table_shows_profile_changes_upgrades_removals_and_sizes(nano_plan: Plan) -> None:
    text = render.table(nano_plan)
    out = lines_of(text)
    assert out[0] == "profiles/minimal.yaml (minimal): changed, base 1234567"
    assert "+ packages[nano]" in out and "- packages[init]" in out
    assert any(x.startswith("~ busybox 1.35.0 -> 1.36.0 (upgrade; repository update (requested))") for x in out)
    removed = next(x for x in out if x.startswith("- init "))
    assert removed.startswith("- init 1.0.0 (no longer needed (was: requested))") and removed.endswith("-20.0 KiB")
    assert "x86_64 packages (+1.1 MiB):" in out      # 600 + 300 + 200 + 20 - 20 KiB
    assert "~ x86_64/iso (iso): rebuild: 5 package changes; profile changed: packages; about +1.1 MiB" in out
    assert "\x1b[" not in text


def test_table_summary_line_counts(nano_plan: Plan) -> None:
    last = render.table(nano_plan).rstrip("\n").splitlines()[-1]
    assert last == "Plan: 3 packages to add, 1 to change, 1 to remove; 2 outputs to rebuild; 0 policy violations."


def test_identical_states_have_no_changes() -> None:
    plan = make_plan(old_state(), old_state())
    assert plan.verdict == "no changes"
    header = "profiles/minimal.yaml (minimal): unchanged, base 1234567"
    assert render.table(plan) == f"{header}\n\n{render.NO_CHANGES}\n"
    assert render.summary_line(plan) == "No changes. The images match the desired state."
    assert "No changes" in render.markdown(plan)
    assert render.matrix_json(plan) == '{"include":[]}\n'


def test_table_shows_a_changed_setting_callouts_and_violations() -> None:
    new = profile(hostname="box", kernel={"package": "linux", "cmdline": "quiet console=ttyS0"},
                  policy={"kernel-change-requires-ack": True, "denied-packages": ["driver-virtio"]})
    plan = make_plan(old_state(), state(new, lock(BASE_ROWS)))
    out = lines_of(render.table(plan))
    assert "~ hostname: minimal -> box" in out
    assert any(x.startswith("! kernel: kernel settings: ") for x in out)
    assert "x policy denied-packages: x86_64: driver-virtio is denied by policy" in out  # pulled in, not requested
    assert any(x.startswith("x policy kernel-change-requires-ack: ") for x in out)
    assert out[-1] == "Plan: 0 packages to add, 0 to change, 0 to remove; 2 outputs to rebuild; 2 policy violations."


def test_color_marks_the_symbols_only_when_asked(nano_plan: Plan) -> None:
    colored = render.table(nano_plan, color=True)
    assert "\x1b[32m+\x1b[0m nano 7.2.0" in colored and "\x1b[33m~\x1b[0m busybox" in colored
    assert "\x1b[31m-\x1b[0m init" in colored


def test_new_and_removed_profiles_are_one_line_each() -> None:
    new = make_plan(state(None, None), old_state(), base="")
    out = lines_of(render.table(new))
    assert out[0] == "profiles/minimal.yaml (minimal): new"
    assert "+ new profile (11 settings)" in out and any(x.startswith("+ linux 6.1.0 (kernel)") for x in out)
    gone = lines_of(render.table(make_plan(old_state(), state(None, None))))
    assert gone[0] == "profiles/minimal.yaml (minimal): removed, base 1234567"
    assert gone[2].startswith("- profile removed (11 settings)")


@pytest.mark.parametrize(("delta", "text"), [(0, "0 B"), (512, "+512 B"), (-2048, "-2.0 KiB"),
                                             (int(1.25 * MIB), "+1.2 MiB"), (3 << 30, "+3.0 GiB")])
def test_human_size(delta: int, text: str) -> None:
    assert render.human_size(delta) == text


# ---------------------------------------------------------------- markdown


def test_markdown_has_a_row_per_package_change(nano_plan: Plan) -> None:
    md = render.markdown(nano_plan)
    assert md.startswith("## vcomp plan: changes to apply\n")
    assert "**Plan: 3 packages to add, 1 to change, 1 to remove; 2 outputs to rebuild; 0 policy violations.**" in md
    rows = [x for x in md.splitlines() if x.startswith("| x86_64 |")]
    assert len(rows) == len(nano_plan.profiles[0].package_changes) == 5
    assert "| x86_64 | `~` | busybox | 1.35.0 → 1.36.0 | upgrade; repository update (requested) | +20.0 KiB |" in rows
    assert "| x86_64 | `+` | libtinfo6 | 6.4.0 | dependency of libncursesw6 | +200.0 KiB |" in rows
    assert "- `+ packages[nano]`" in md
    assert "- `~ x86_64/iso` (iso): rebuild: 5 package changes; profile changed: packages; about +1.1 MiB" in md


def test_markdown_escapes_pipes_in_cells() -> None:
    rows = [*BASE_ROWS, row("nano", "7.2.0", "requested | pinned", license="GPL-2.0-or-later")]
    plan = make_plan(old_state(), state(profile(packages=("base-files", "busybox", "init", "nano")), lock(rows)))
    (line,) = [x for x in render.markdown(plan).splitlines() if x.startswith("| x86_64 |")]
    assert r"requested \| pinned" in line
    assert line.replace(r"\|", "").count("|") == 7    # six cells


def test_markdown_puts_violations_and_callouts_in_alerts() -> None:
    rows = [*BASE_ROWS, row("nano", "7.2.0", license="GPL-3.0-or-later")]
    plan = make_plan(old_state(), state(profile(packages=("base-files", "busybox", "init", "nano"),
                                                capabilities=["net_admin"]), lock(rows)))
    md = render.markdown(plan)
    assert md.startswith("## vcomp plan: policy violations\n")
    caution = md.index("> [!CAUTION]")
    assert "> **1 policy violation: the plan fails policy (exit code 3)**" in md
    assert "> - `profiles/minimal.yaml` **allowed-licenses**: x86\\_64: nano 7.2.0 is licensed GPL-3.0-or-later" in md
    assert caution < md.index("### `profiles/minimal.yaml`") < md.index("> [!WARNING]")
    assert "> - **capabilities**: granted capabilities: +net\\_admin" in md


# ---------------------------------------------------------------- JSON and the matrix


def _violating() -> Plan:
    rows = [*BASE_ROWS, row("nano", "7.2.0", license="GPL-3.0-or-later")]
    return make_plan(old_state(), state(profile(packages=("base-files", "busybox", "init", "nano"),
                                                policy={"denied-packages": ["driver-virtio"],
                                                        "allowed-licenses": ["MIT", "GPL-2.0-only"]}),
                                        lock(rows)))


PLANS: dict[str, Callable[[], Plan]] = {
    "changed": lambda: make_plan(old_state(), nano_state()),
    "unchanged": lambda: make_plan(old_state(), old_state()),
    "violation": _violating,
    "removed": lambda: make_plan(old_state(), state(None, None)),
    "new": lambda: make_plan(state(None, None), nano_state(), base=""),
    "acknowledged": lambda: make_plan(old_state(), state(profile(kernel={"package": "linux", "cmdline": ""},
                                                                 policy={"kernel-change-requires-ack": True}),
                                                         lock(BASE_ROWS)), acknowledged=("kernel",)),
}


@pytest.mark.parametrize("case", sorted(PLANS))
def test_json_validates_against_the_schema(case: str, validator: Draft202012Validator) -> None:
    plan = PLANS[case]()
    text = render.to_json(plan)
    assert text.endswith("}\n")
    doc = json.loads(text)
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(doc)]
    assert errors == []
    assert doc["exit_code"] == EXIT_CODES[plan.verdict] and doc["format_version"] == plan.format


def test_schema_rejects_what_is_not_a_plan(nano_plan: Plan, validator: Draft202012Validator) -> None:
    doc = json.loads(render.to_json(nano_plan))
    for broken in ({"exit_code": 4}, {"format_version": "2.0"}, {"profiles": [{"name": "x"}]}):
        assert not validator.is_valid({**doc, **broken}), broken
    added = copy.deepcopy(doc)
    change = next(c for c in added["profiles"][0]["package_changes"] if c["action"] == "add")
    change["old"] = "1.0"                                            # an added package has no old version
    assert not validator.is_valid(added)
    assert validator.is_valid({**doc, "new_field_of_1_1": {"any": "thing"}})


def test_plans_are_of_validated_profiles_only() -> None:
    """YAML values JSON has not (dates, non-string keys) never reach a plan: such a profile is refused."""
    for extra in ({"released": dt.date(2024, 5, 1)}, {"labels": {1: "one"}}):
        with pytest.raises(UserError):
            state(profile(**extra), lock(BASE_ROWS))


def test_json_differs_for_states_that_differ() -> None:
    assert render.to_json(PLANS["changed"]()) == render.to_json(PLANS["changed"]())
    assert json.loads(render.to_json(PLANS["unchanged"]()))["summary"]["profiles_changed"] == 0


def test_matrix_json_lists_the_outputs_to_rebuild(nano_plan: Plan) -> None:
    text = render.matrix_json(nano_plan)
    assert "\n" not in text.rstrip("\n")            # one line: echo "matrix=..." >> "$GITHUB_OUTPUT"
    assert json.loads(text) == {"include": [
        {"profile": "profiles/minimal.yaml", "arch": "x86_64", "output": "disk"},
        {"profile": "profiles/minimal.yaml", "arch": "x86_64", "output": "iso"}]}


# ---------------------------------------------------------------- exit codes


def test_exit_codes_match_the_situation() -> None:
    assert EXIT_CODES == {"no changes": 0, "error": 1, "changes": 2, "policy violation": 3}
    assert EXIT_ERROR == 1                          # the CLI's own, for errors; a plan never has it
    assert EXIT_CODES[PLANS["unchanged"]().verdict] == EXIT_NO_CHANGES == 0
    assert EXIT_CODES[PLANS["changed"]().verdict] == EXIT_CHANGES == 2
    assert EXIT_CODES[PLANS["violation"]().verdict] == EXIT_POLICY == 3
    assert EXIT_CODES[PLANS["acknowledged"]().verdict] == EXIT_CHANGES      # the kernel change was acknowledged
    assert EXIT_CODES[make_plan(old_state(), state(profile(kernel={"package": "linux", "cmdline": ""},
                                                           policy={"kernel-change-requires-ack": True}),
                                                   lock(BASE_ROWS))).verdict] == EXIT_POLICY
