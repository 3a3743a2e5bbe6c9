"""Plugins (composer/plugins, docs/plugins.md): real distributions on sys.path (a dist-info with its
entry_points.txt beside a module), found through importlib.metadata as vcomp finds installed ones.

Each refusal is one line naming the distribution, its version and the entry point, with the fix: a module
that cannot be imported, an object that is not a Plugin, a row of the wrong type, another API version, a
name that is not the entry point's, a name clashing with a built-in row or another plugin, a row that fails
its registry's check. A kept plugin's row is in its registry after the built-ins and completes the schema
its registry feeds (profile outputs and policy, recipe sources); VCOMP_NO_PLUGINS=1 and --no-plugins load none.
"""

from __future__ import annotations

import itertools
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from composer.cli.main import main
from composer.gitops import policy
from composer.image.outputs import OUTPUT_TYPES
from composer.package.sources import SOURCE_KINDS, recipe_schema
from composer.plugins import load, registry
from composer.plugins.base import API_VERSION
from composer.profile.validate import profile_schema_now
from composer.repo.transports import TRANSPORTS, UrlFetcher
from composer.schema import load as load_schema

_serial = itertools.count()

HEADER = "from composer.plugins import api\n"
OUTPUT_ROW = ('api.OutputType(name={name!r}, description="a test type", arches=frozenset({{"x86_64"}}), firmware={{}}, '
              'builder=lambda w, j, o: None, extension=".bin", options={{"size": {{"type": "integer"}}}})')


class Site:
    """A directory on sys.path that holds distributions made by :meth:`add`."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        root.mkdir()
        monkeypatch.syspath_prepend(str(root))

    def add(self, dist: str, group: str, entry: str, code: str, *, attr: str = "PLUGIN") -> str:
        """A distribution ``dist`` 1.0 whose entry point ``entry`` in ``group`` names ``attr`` of a new module
        holding ``code``; the module's name is returned."""
        module = f"vcomp_test_plugin_{next(_serial)}"
        (self.root / f"{module}.py").write_text(code)
        info = self.root / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[{group}]\n{entry} = {module}:{attr}\n")
        return module


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.delenv("VCOMP_NO_PLUGINS", raising=False)
    registry.reset()
    yield Site(tmp_path / "site", monkeypatch)
    registry.reset()
    load.disable(False)


def output_plugin(name: str, *, version: int = API_VERSION) -> str:
    return HEADER + f"PLUGIN = api.Plugin(api_version={version}, row={OUTPUT_ROW.format(name=name)})\n"


def refused(group: str) -> list[str]:
    return [r.line for r in load.found(registry.REGISTRIES[group].spec(), quiet=True).refused]


def test_an_output_type_plugin_completes_the_registry_and_the_profile_schema(site: Site) -> None:
    site.add("vcomp-out-a", "vcomp.outputs", "blob", output_plugin("blob"))
    assert list(OUTPUT_TYPES)[-1] == "blob" and "iso" in OUTPUT_TYPES, "plugins come after the built-ins"
    assert OUTPUT_TYPES.origin("blob") is not None and OUTPUT_TYPES.origin("iso") is None
    origin = OUTPUT_TYPES.origin("blob")
    assert origin is not None and (origin.distribution, origin.version) == ("vcomp-out-a", "1.0")
    output = profile_schema_now()["$defs"]["output"]["properties"]
    assert "blob" in output["type"]["enum"] and "size" in output["options"]["properties"]
    assert refused("vcomp.outputs") == []


def test_a_module_that_cannot_be_imported_is_refused_in_one_line(site: Site, capsys: pytest.CaptureFixture[str]) \
        -> None:
    site.add("vcomp-broken", "vcomp.outputs", "broken", "import vcomp_no_such_module\n")
    assert "broken" not in OUTPUT_TYPES
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("warning: plugin 'broken' (vcomp.outputs = vcomp_test_plugin_")
    assert "of vcomp-broken 1.0 refused: cannot be imported: ModuleNotFoundError: No module named " \
           "'vcomp_no_such_module'" in err[0]
    assert "pip uninstall vcomp-broken" in err[0] and "VCOMP_NO_PLUGINS=1" in err[0]
    list(OUTPUT_TYPES)
    assert capsys.readouterr().err == "", "found once: the notice is not repeated"


def test_another_api_version_is_refused(site: Site) -> None:
    site.add("vcomp-future", "vcomp.outputs", "future", output_plugin("future", version=API_VERSION + 1))
    assert "future" not in OUTPUT_TYPES
    [line] = refused("vcomp.outputs")
    assert f"is written for plugin API version {API_VERSION + 1}; this vcomp offers version {API_VERSION}" in line
    assert "of vcomp-future 1.0" in line


def test_a_name_clashing_with_a_built_in_is_refused(site: Site) -> None:
    site.add("vcomp-evil-iso", "vcomp.outputs", "iso", output_plugin("iso"))
    assert OUTPUT_TYPES["iso"].extension == ".iso", "a built-in row is never replaced"
    [line] = refused("vcomp.outputs")
    assert "output type 'iso' is a built-in one (plugins add output types, never replace one)" in line


def test_a_name_clashing_with_another_plugin_is_refused(site: Site) -> None:
    site.add("vcomp-a", "vcomp.outputs", "blob", output_plugin("blob"))
    site.add("vcomp-b", "vcomp.outputs", "blob", output_plugin("blob"))
    assert OUTPUT_TYPES.origin("blob").distribution == "vcomp-a"  # type: ignore[union-attr]
    [line] = refused("vcomp.outputs")
    assert "of vcomp-b 1.0 refused: output type 'blob' is already added by plugin 'blob'" in line
    assert "of vcomp-a 1.0" in line and "uninstall one of vcomp-a and vcomp-b" in line


@pytest.mark.parametrize(("code", "says"), [
    ("PLUGIN = 42\n", "names a int, not a composer.plugins.api.Plugin"),
    ("PLUGIN = api.Plugin(api_version=1, row=api.SourceKind(name='blob', fill=print, schema={'type': 'object'}))\n",
     "its row is a SourceKind, not a OutputType (the row type of vcomp.outputs)"),
    (f"PLUGIN = api.Plugin(api_version=1, row={OUTPUT_ROW.format(name='other')})\n",
     "its output type is named 'other', not 'blob' as its entry point"),
    (f"PLUGIN = api.Plugin(api_version=1, row={OUTPUT_ROW.format(name='blob').replace('x86_64', 'vax')})\n",
     "its output type is not valid: arches ['vax'] must be some of"),
    (f"PLUGIN = api.Plugin(api_version=1, row={OUTPUT_ROW.format(name='blob').replace('integer', 'integr')})\n",
     "its output type is not valid: the schema of its options is not a JSON schema"),
])
def test_a_wrong_row_is_refused(site: Site, code: str, says: str) -> None:
    site.add("vcomp-wrong", "vcomp.outputs", "blob", HEADER + code)
    assert "blob" not in OUTPUT_TYPES
    [line] = refused("vcomp.outputs")
    assert says in line, line


def test_no_plugins_loads_none(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    site.add("vcomp-out-a", "vcomp.outputs", "blob", output_plugin("blob"))
    monkeypatch.setenv("VCOMP_NO_PLUGINS", "1")
    assert "blob" not in OUTPUT_TYPES
    monkeypatch.delenv("VCOMP_NO_PLUGINS")
    load.disable()
    registry.reset()
    assert "blob" not in OUTPUT_TYPES
    load.disable(False)
    registry.reset()
    assert "blob" in OUTPUT_TYPES


def test_a_source_kind_plugin_completes_the_recipe_schema(site: Site) -> None:
    site.add("vcomp-src", "vcomp.sources", "git", HEADER + textwrap.dedent("""\
        def fill(table, ctx, index):
            return api.SourceResult(provenance=[{"kind": "git", "url": table["url"]}])
        PLUGIN = api.Plugin(api_version=1, row=api.SourceKind(name="git", fill=fill, summary="a git checkout",
            schema={"type": "object", "required": ["url"], "properties": {"url": {"type": "string"}}}))
        """))
    assert "git" in SOURCE_KINDS and list(SOURCE_KINDS)[-1] == "git"
    doc = recipe_schema(load_schema("recipe.schema.json"))
    assert doc is not None
    source = Draft202012Validator({"$defs": doc["$defs"], "$ref": "#/$defs/source"})
    assert list(source.iter_errors({"kind": "git", "url": "https://example.org/x.git"})) == []
    assert [e.message for e in source.iter_errors({"kind": "git"})] == ["'url' is a required property"]
    assert len(list(source.iter_errors({"kind": "git", "url": "u", "branch": "main"}))) == 1


def test_a_transport_plugin_serves_its_scheme(site: Site) -> None:
    site.add("vcomp-mem", "vcomp.transports", "mem", HEADER + textwrap.dedent("""\
        def make(limits):
            def fetch(url):
                if url.endswith("/missing"):
                    raise api.DownloadHTTPError("not found", 404)
                yield b"bytes of " + url.encode()
            return fetch
        PLUGIN = api.Plugin(api_version=1, row=api.Transport(scheme="mem", summary="memory", make=make))
        """))
    assert list(TRANSPORTS) == ["file", "http", "https", "mem"]
    assert UrlFetcher().download_bytes("mem://x/y", 100) == b"bytes of mem://x/y"


def test_a_policy_gate_plugin_is_evaluated_and_its_key_accepted(site: Site) -> None:
    site.add("vcomp-gate", "vcomp.policies", "max-packages", HEADER + textwrap.dedent("""\
        def count(ctx, p):
            if p.name.startswith("z"):
                yield f"{p.arch}: {p.name} starts with z"
        PLUGIN = api.Plugin(api_version=1, row=api.Gate(rule="max-packages", checks="no package starts with z",
            reads="x86_64: zsh starts with z", active=lambda ctx: "max-packages" in ctx.policy, locked=count,
            schema={"type": "integer", "minimum": 0}))
        """))
    assert policy.every_gate()[-1].rule == "max-packages"
    props = profile_schema_now()["properties"]["policy"]["properties"]
    assert props["max-packages"] == {"type": "integer", "minimum": 0}
    locked = [policy.Locked(arch="x86_64", name=n, version="1", license="") for n in ("bash", "zsh")]
    found = policy.evaluate({"max-packages": 3}, locked=locked, outputs=[], changes=[], callouts=[])
    assert [(v.rule, v.message) for v in found] == [("max-packages", "x86_64: zsh starts with z")]


def test_vcomp_plugins_lists_the_loaded_and_the_refused(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    site.add("vcomp-out-a", "vcomp.outputs", "blob", output_plugin("blob"))
    site.add("vcomp-future", "vcomp.outputs", "future", output_plugin("future", version=99))
    assert main(["plugins", "--json"]) == 1, "a refused plugin: exit 1"
    doc = json.loads(capsys.readouterr().out)
    from tests.unit.test_json_output import check
    check(doc, "plugins")   # with every object closed too: each field is described
    assert [(p["name"], p["distribution"], p["kind"]) for p in doc["plugins"]] == \
        [("blob", "vcomp-out-a", "output type")]
    assert [(r["entry_point"], r["distribution"]) for r in doc["refused"]] == [("future", "vcomp-future")]
    assert main(["plugins"]) == 1
    captured = capsys.readouterr()
    assert "blob" in captured.out and "refused: plugin 'future'" in captured.err
    registry.reset()
    assert main(["--no-plugins", "plugins", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["plugins"] == []


def test_the_built_in_gate_keys_are_the_profile_schemas_policy_keys() -> None:
    """A plugin may not take a built-in gate's key: the profile layer knows them from the schema."""
    from composer.profile.gates import builtin_keys
    assert builtin_keys() == {g.rule for g in policy.GATES} == set(policy.POLICY_GATES.builtin_rows())


PROFILE = """\
name: p
architectures: [x86_64]
repositories:
  - name: sample
    url: ../repo
    root: root.json
packages: [busybox]
outputs:
  - type: blob
    options: {size: 3}
policy:
  max-packages: 3
"""

GATE = HEADER + textwrap.dedent("""\
    PLUGIN = api.Plugin(api_version=1, row=api.Gate(rule="max-packages", checks="-", reads="-",
        active=lambda ctx: True, locked=lambda ctx, p: (), schema={"type": "integer", "minimum": 0}))
    """)


def test_a_profile_names_a_plugin_output_type_and_policy_key(site: Site, tmp_path: Path) -> None:
    from composer.errors import UserError
    from composer.profile.load import load_profile
    (tmp_path / "root.json").write_text("{}")
    path = tmp_path / "p.yaml"
    path.write_text(PROFILE)
    with pytest.raises(UserError) as without:
        load_profile(path)
    assert "'blob' is not one of" in without.value.message and "max-packages" in without.value.message
    site.add("vcomp-out-a", "vcomp.outputs", "blob", output_plugin("blob"))
    site.add("vcomp-gate", "vcomp.policies", "max-packages", GATE)
    registry.reset()
    profile = load_profile(path)
    assert [(o.type, dict(o.options)) for o in profile.outputs] == [("blob", {"size": 3})]
    assert profile.policy.to_dict() == {"max-packages": 3}, "the plan's policy evaluation sees the plugin's key"
    path.write_text(PROFILE.replace("size: 3", "size: big").replace("max-packages: 3", "max-packages: -1"))
    with pytest.raises(UserError) as wrong:
        load_profile(path)
    assert "outputs[0].options.size" in wrong.value.message and "policy.max-packages" in wrong.value.message


def test_a_package_is_built_from_a_plugin_source_kind(site: Site, tmp_path: Path, dev_key: Any) -> None:
    from composer.package.build import build
    from tests.conftest import write_recipe
    site.add("vcomp-src", "vcomp.sources", "text", HEADER + textwrap.dedent("""\
        def fill(table, ctx, index):
            path = ctx.staging / table["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(table["text"])
            return api.SourceResult(provenance=[{"kind": "text", "path": table["path"], "name": ctx.recipe.name}])
        PLUGIN = api.Plugin(api_version=1, row=api.SourceKind(name="text", fill=fill, summary="a file from text",
            schema={"type": "object", "required": ["path", "text"],
                    "properties": {"path": {"type": "string"}, "text": {"type": "string"}}}))
        """))
    recipe = write_recipe(tmp_path / "r", """\
        [package]
        name = "greeting"
        version = "1.0.0"
        description = "A file written by a plugin's source kind"
        authors = ["Test Author"]
        license = "MIT"
        type = "application"

        [[source]]
        kind = "text"
        path = "usr/share/greeting"
        text = "hello from a plugin"
        """)
    built = build(recipe, "x86_64", dev_key, tmp_path / "out")
    assert "usr/share/greeting" in [e.path for e in built.manifest.entries]
    assert built.metadata.to_dict()["provenance"]["sources"] == \
        [{"kind": "text", "path": "usr/share/greeting", "name": "greeting"}]
