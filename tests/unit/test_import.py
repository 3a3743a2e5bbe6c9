"""``vcomp import debian`` (design14 §4, §3 at repo add) on the committed real fixture, without the network.

The fixture (tests/data/debian-bookworm-amd64/Packages.zst: 3,692 real bookworm stanzas) comes in through the
importer's local-file seam (``--packages FILE`` / :func:`composer.package.importer.file_stanzas`) instead of
apt's lists; everything after that is the product's path: mapping, the bulk builder, ``repo add`` in chunks with
worker processes, publish, the index.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from composer.cli.main import main
from composer.errors import InvalidPackage, UserError
from composer.fsutil import sha256_bytes
from composer.package import bulk, importer
from composer.package.deb822 import Stanza
from composer.package.debimport import DebMetadata, projection_monotone, select_versions
from composer.package.metadata import Metadata
from composer.repo import edit
from composer.repo.index import INDEX_LEVEL, LARGE_INDEX_LEVEL, IndexEntry, build_index, index_level, parse_index
from composer.repo.store import RepoStore
from tests.repo_fixtures import Keys, make_keys
from tests.unit.test_json_output import check

FIXTURE = Path(__file__).parent.parent / "data" / "debian-bookworm-amd64" / "Packages.zst"
EPOCH = 1_700_000_000
ARCH = "x86_64"
# 189 packages: a shell, an editor, an ssh server, python, a toolchain, a web and a database server
REQUEST = importer.Request(names=("bash", "nano", "openssh-server", "python3", "build-essential", "nginx",
                                  "postgresql"), closure=True)


@pytest.fixture(scope="module")
def stanzas() -> tuple[Stanza, ...]:
    return importer.file_stanzas([FIXTURE])


@pytest.fixture(scope="module")
def plan(stanzas: tuple[Stanza, ...]) -> importer.Plan:
    return importer.plan(stanzas, REQUEST)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("keys"))


def _repo(directory: Path, keys: Keys) -> RepoStore:
    online = {role: [keys.by_name[role]] for role in ("index", "snapshot", "timestamp")}
    edit.init(directory, root_keys=[keys.root1], root_threshold=1, targets_keys=[keys.targets], online=online,
              online_paths={role: [str(keys.path(role))] for role in online}, architectures=[ARCH])
    store = RepoStore(directory)
    edit.delegate(store, "debian", [keys.alice.public], ["*"], targets_keys=[keys.targets])
    return store


def _build(plan: importer.Plan, keys: Keys, out: Path, jobs: int = 1) -> list[Path]:
    built = importer.build_metadata_only(plan.packages, key=keys.alice, epoch=EPOCH, out_dir=out, jobs=jobs)
    return [out / b.name for b in built]


def _entries(paths: list[Path]) -> list[IndexEntry]:
    from composer.package.archive import read_header
    return [IndexEntry.from_header(read_header(p), size=p.stat().st_size, sha256=sha256_bytes(p.read_bytes()))
            for p in paths]


# --- the plan ------------------------------------------------------------------------------------------------------

def test_the_closure_plan(plan: importer.Plan) -> None:
    names = {m.name for m in plan.packages}
    assert len(plan.packages) == 189
    assert {"bash", "nano", "openssh-server", "python3", "libc6", "openssh-client", "gcc-12", "nginx"} <= names
    assert {"mawk", "gawk", "original-awk"} & names   # every alternative and provider is reached
    assert plan.missing == () and plan.stanzas == 3692


def test_names_without_closure_and_an_unknown_name(stanzas: tuple[Stanza, ...]) -> None:
    p = importer.plan(stanzas, importer.Request(names=("bash", "nano")))
    assert [m.name for m in p.packages] == ["bash", "nano"]
    with pytest.raises(UserError, match="no package bsah") as exc:
        importer.plan(stanzas, importer.Request(names=("bsah",)))
    assert "bash" in exc.value.hint


def _variant(meta: DebMetadata, version: str, sha: str = "0" * 64) -> DebMetadata:
    epoch, _, rest = version.rpartition(":")
    upstream, _, revision = rest.rpartition("-")
    return dataclasses.replace(meta, upstream_version=version, epoch=int(epoch or 0), upstream=upstream,
                               revision=revision, source=dataclasses.replace(meta.source, version=version, sha256=sha))


def test_several_suites_every_version_once_newest_last(plan: importer.Plan) -> None:
    bash = next(m for m in plan.packages if m.name == "bash")
    update = _variant(bash, "5.2.15-2+deb12u1")
    same = _variant(bash, bash.upstream_version, bash.source.sha256)     # the same .deb in a second suite
    tie = _variant(bash, "5.2.15-02+b13")                                # dpkg-equal to 5.2.15-2+b13
    chosen = select_versions([bash, update, same, tie])
    assert [m.upstream_version for m in chosen.packages] == ["5.2.15-2+b13", "5.2.15-2+deb12u1"]
    assert chosen.counts["same version in several suites (kept once)"] == 1
    assert chosen.counts["dpkg-equal duplicate version (skipped)"] == 1
    assert chosen.skipped == ("bash 5.2.15-02+b13 x86_64: ties in dpkg order with 5.2.15-2+b13",)
    newest = select_versions([update, bash], newest_only=True)
    assert [m.upstream_version for m in newest.packages] == ["5.2.15-2+deb12u1"]


@pytest.mark.parametrize(("upstream", "monotone"), [
    ("2.36", True), ("1.2.3.4", True), ("1.0~rc1", True), ("0.11.dfsg1", False), ("0.9.beta2", False),
    ("2.40.e+ds", False), ("1.2.3.dfsg", True), ("dfsg", False), ("1.2+dfsg.1", True)])
def test_projection_monotone(upstream: str, monotone: bool) -> None:
    assert projection_monotone(upstream) is monotone


def test_metadata_dict_is_valid_metadata(plan: importer.Plan) -> None:
    sudo_like = next(m for m in plan.packages if m.epoch)
    m = Metadata.from_dict(sudo_like.metadata_dict())
    assert (m.version_scheme, m.upstream_version, m.epoch) == ("deb", sudo_like.upstream_version, sudo_like.epoch)
    assert str(m.full_version) == sudo_like.upstream_version
    no_revision = next(m for m in plan.packages if not m.revision)
    assert "revision" not in no_revision.metadata_dict()["package"]   # type: ignore[operator]


# --- building, adding, publishing ----------------------------------------------------------------------------------

def test_build_add_publish(plan: importer.Plan, keys: Keys, tmp_path: Path) -> None:
    paths = _build(plan, keys, tmp_path / "out")
    store = _repo(tmp_path / "repo", keys)
    added = edit.add_many(store, paths, [keys.alice], jobs=2, chunk=120)
    assert len(added) == len(paths) and all(a.new for a in added)
    assert RepoStore(store.dir).current_version("debian") == 2       # one signature per chunk
    assert edit.publish(store)["packages"] == len(paths)
    index = next((store.dir / "targets" / "index").glob("*.x86_64.json.zst"))
    entries = {e.name: e for e in parse_index(index.read_bytes(), "index")}
    assert len(entries) == len(paths)
    bash = entries["bash"]
    assert (bash.version_text, bash.epoch, bash.revision, bash.version_scheme) == (
        "5.2.15-2+b13", 0, "2+b13", "deb")
    assert bash.essential and bash.priority == "required"
    assert bash.relations["pre-requires"] and "libtinfo6 (>= 6)" in bash.relations["pre-requires"]
    epoch = next(e for e in entries.values() if e.epoch)
    assert epoch.version_text.startswith(f"{epoch.epoch}:") and epoch.path.count("%3a") == 1
    assert any(" = " in p for e in entries.values() for p in e.provides)   # versioned provides survive
    again = edit.add_many(store, paths[:10], [keys.alice], jobs=1)
    assert not any(a.new for a in again)                                  # the same bytes: unchanged


def test_the_same_stanzas_twice_give_the_same_bytes(plan: importer.Plan, keys: Keys, tmp_path: Path) -> None:
    first = _build(plan, keys, tmp_path / "a", jobs=1)
    second = _build(plan, keys, tmp_path / "b", jobs=2)
    assert [p.name for p in first] == [p.name for p in second]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(first, second, strict=True))
    assert build_index(ARCH, _entries(first)) == build_index(ARCH, _entries(second))


def test_bulk_bytes_equal_write_package(plan: importer.Plan, keys: Keys, tmp_path: Path) -> None:
    from composer.package.archive import verify_package, write_package
    doc = plan.packages[0].metadata_dict()
    write_package(tmp_path / "one.vpk", metadata=Metadata.from_dict(doc), staged=[], key=keys.alice, epoch=EPOCH)
    _meta, data = bulk.package_bytes(doc, keys.alice, EPOCH, origin="x")
    assert data == (tmp_path / "one.vpk").read_bytes()
    assert verify_package(tmp_path / "one.vpk").files == 0


# --- refusals at repo add (design14 §3) ----------------------------------------------------------------------------

def _one(meta: DebMetadata, keys: Keys, out: Path, doc: dict[str, object] | None = None) -> Path:
    built = bulk.build_many([doc or meta.metadata_dict()], key=keys.alice, epoch=EPOCH, out_dir=out)
    return out / built[0].name


@pytest.fixture
def published(plan: importer.Plan, keys: Keys, tmp_path: Path) -> tuple[RepoStore, DebMetadata]:
    bash = next(m for m in plan.packages if m.name == "bash")
    store = _repo(tmp_path / "repo", keys)
    edit.add(store, [_one(bash, keys, tmp_path / "first")], [keys.alice])
    return store, bash


def test_a_version_tying_with_a_published_one_is_refused(published: tuple[RepoStore, DebMetadata], keys: Keys,
                                                         tmp_path: Path) -> None:
    store, bash = published
    tie = _one(_variant(bash, "5.2.15-02+b13"), keys, tmp_path / "tie")
    with pytest.raises(InvalidPackage, match=r"bash-5.2.15-02\+b13-x86_64: version 5.2.15-02\+b13 ties in version "
                                             r"order with the published 5.2.15-2\+b13") as exc:
        edit.add(store, [tie], [keys.alice])
    assert "revision" in exc.value.hint
    newer = _one(_variant(bash, "5.2.15-2+deb12u1"), keys, tmp_path / "newer")
    assert edit.add(store, [newer], [keys.alice])[0].new                 # a version that orders: fine


def test_two_tying_versions_in_one_upload_are_refused(plan: importer.Plan, keys: Keys, tmp_path: Path) -> None:
    nano = next(m for m in plan.packages if m.name == "nano")
    a = _one(nano, keys, tmp_path / "a")
    b = _one(_variant(nano, nano.upstream_version.replace("-", "-0", 1)), keys, tmp_path / "b")
    with pytest.raises(InvalidPackage, match="ties in version order"):
        edit.add(_repo(tmp_path / "repo", keys), [a, b], [keys.alice])


def test_a_change_of_version_scheme_is_refused(published: tuple[RepoStore, DebMetadata], keys: Keys,
                                               tmp_path: Path) -> None:
    store, bash = published
    doc = bash.metadata_dict()
    package = dict(doc["package"])   # type: ignore[call-overload]
    for k in ("epoch", "revision", "upstream-version", "version-scheme"):
        package.pop(k, None)
    package["version"] = "6.0.0"
    native = _one(bash, keys, tmp_path / "native", {**doc, "package": package})
    with pytest.raises(InvalidPackage, match="bash-6.0.0-x86_64 is version scheme 'semver' but "
                                             r"bash-5.2.15-2\+b13-x86_64 is published with 'deb'"):
        edit.add(store, [native], [keys.alice])


def test_an_empty_requirement_is_refused_at_repo_add(plan: importer.Plan, keys: Keys, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    doc = next(m for m in plan.packages if m.name == "nano").metadata_dict()
    doc["relations"] = {"requires": ["git-man (>> 2.39.5)", "git-man (<< 2.39.5)"]}
    monkeypatch.setattr(bulk, "validate_dict", lambda *a, **k: None)     # a builder that does not check
    bad = _one(plan.packages[0], keys, tmp_path / "bad", doc)
    with pytest.raises(InvalidPackage, match=r"'git-man \(>> 2.39.5\)', 'git-man \(<< 2.39.5\)': no version of "
                                             "git-man can satisfy all of them"):
        edit.add(_repo(tmp_path / "repo", keys), [bad], [keys.alice])


def test_the_index_level_by_size() -> None:
    assert index_level(1 << 20) == INDEX_LEVEL and index_level(32 << 20) == LARGE_INDEX_LEVEL == 9


# --- the command line ----------------------------------------------------------------------------------------------

def test_cli_import_add_publish_report(keys: Keys, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _repo(tmp_path / "repo", keys)
    code = main(["import", "debian", "--packages", str(FIXTURE), "--metadata-only", "--closure", "bash", "nano",
                 "--key", str(keys.path("alice")), "--out", str(tmp_path / "out"), "--repo", str(tmp_path / "repo"),
                 "--report", str(tmp_path / "report.json"), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    report = json.loads((tmp_path / "report.json").read_text())
    assert summary == report
    check(summary, "import-debian")  # schemas/import-debian.schema.json (tests/unit/test_json_output.py)
    assert summary["packages"] == 28 and summary["repository"]["published"] == 28
    assert set(summary["seconds"]) == {"parse", "map", "build", "add", "publish"}
    assert summary["ms-per-package"] > 0 and summary["metadata-only"] is True


@pytest.mark.parametrize(("args", "message"), [
    (["--all", "bash"], "--all imports every package; do not also name packages"),
    ([], "no package names"),
    (["--with-recommends", "bash"], "--with-recommends only widens --closure"),
    (["--jobs", "0", "bash"], "--jobs 0 is not a positive number"),
    (["bsah"], "no package bsah in the suites' index"),
])
def test_cli_usage_errors(args: list[str], message: str, keys: Keys, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["import", "debian", "--packages", str(FIXTURE), "--metadata-only", "--key", str(keys.path("alice")),
                 "--out", str(tmp_path / "out"), *args])
    assert code == 1
    err = capsys.readouterr().err
    assert message in err and "hint:" in err


def test_cli_refuses_an_unknown_suite_and_packages_with_payload(keys: Keys, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    base = ["import", "debian", "--key", str(keys.path("alice")), "--out", str(tmp_path / "out"), "bash"]
    assert main([*base, "--suite", "sid", "--metadata-only"]) == 1
    assert "suite sid is not one vcomp knows (bookworm, bookworm-security" in capsys.readouterr().err
    assert main([*base, "--suite", "bookworm", "--suite", "trixie-security", "--metadata-only"]) == 1
    assert "suites of 2 Debian releases (bookworm, trixie) in one import" in capsys.readouterr().err
    assert main([*base, "--packages", str(FIXTURE)]) == 1
    assert "--packages FILE is for --metadata-only imports" in capsys.readouterr().err


# --- with payload, offline: a .deb made here by dpkg-deb ----------------------------------------------------------

def _make_deb(tmp: Path) -> Path:
    import os
    import shutil
    import subprocess
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    root = tmp / "tree"
    for d in ("DEBIAN", "etc", "usr/bin", "usr/share/doc/vtool"):
        (root / d).mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: vtool\nVersion: 1:2.0-3\nArchitecture: amd64\nMaintainer: T <t@example.org>\n"
        "Description: a tool\n")
    (root / "DEBIAN" / "conffiles").write_text("/etc/vtool.conf\n")
    (root / "etc" / "vtool.conf").write_text("x = 1\n")
    (root / "etc" / "vtool.state").write_text("not a conffile\n")
    (root / "usr/bin/vtool").write_text("#!/bin/sh\n")
    (root / "usr/bin/vtool").chmod(0o755)
    (root / "usr/bin/vtool-helper").write_text("#!/bin/sh\n")
    (root / "usr/bin/vtool-helper").chmod(0o4755)
    os.symlink("vtool", root / "usr/bin/vt")
    (root / "usr/share/doc/vtool/copyright").write_text("GPL\n")
    deb = tmp / "vtool_2.0-3_amd64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)], check=True,
                   capture_output=True)
    return deb


def _deb_stanza(deb: Path, sha256: str) -> DebMetadata:
    from composer.package.debimport import map_stanza
    fields = {"Package": "vtool", "Version": "1:2.0-3", "Architecture": "amd64", "Maintainer": "T <t@example.org>",
              "Description": "a tool", "Filename": "pool/main/v/vtool/" + deb.name, "Size": str(deb.stat().st_size),
              "SHA256": sha256, "Installed-Size": "4"}
    meta, _ = map_stanza(Stanza(origin="Packages", line=1, fields=fields, lines={}))
    assert meta is not None
    return meta


def test_with_payload_conffiles_modes_and_provenance(keys: Keys, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from composer.arch import get_arch
    from composer.package.archive import verify_package
    from composer.package.debian import DebianArchive, DebRef
    deb = _make_deb(tmp_path)
    sha = sha256_bytes(deb.read_bytes())
    archive = DebianArchive(tmp_path / "cache")
    monkeypatch.setattr(archive, "download", lambda arch, ref: (DebRef(name=ref.name, version=ref.version,
                                                                       arch="amd64", sha256=sha), deb))
    built = importer.build_with_payload(_deb_stanza(deb, sha), archive=archive, arch=get_arch(ARCH),
                                        key=keys.alice, epoch=EPOCH, out_dir=tmp_path / "out")
    assert built.name == "vtool-1%3a2.0-3-x86_64.vpk"
    verified = verify_package(tmp_path / "out" / built.name)
    entries = {e.path: e for e in verified.header.manifest.entries}
    assert entries["etc/vtool.conf"].role == "config" and entries["etc/vtool.state"].role == "config"
    assert entries["usr/bin/vtool"].role == "binary" and entries["usr/bin/vtool-helper"].mode == 0o4755
    assert entries["usr/bin/vt"].type == "symlink" and entries["usr/share/doc/vtool/copyright"].role == "doc"
    assert importer.conffiles(deb) == frozenset({"etc/vtool.conf"})
    meta = verified.header.metadata
    assert (meta.upstream_version, meta.epoch, meta.revision, meta.version) == ("1:2.0-3", 1, "3", "2.0.0")
    assert meta.license == "LicenseRef-Debian-copyright"          # its copyright file is free-form (dep5.py)
    (source,) = meta.provenance["sources"]
    assert source["sha256"] == sha and source["path"] == "pool/main/v/vtool/vtool_2.0-3_amd64.deb"


def test_a_deb_whose_sha256_differs_from_the_index_is_refused(keys: Keys, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from composer.arch import get_arch
    from composer.errors import VerificationError
    from composer.package.debian import DebianArchive, DebRef
    deb = _make_deb(tmp_path)
    archive = DebianArchive(tmp_path / "cache")
    monkeypatch.setattr(archive, "download", lambda arch, ref: (DebRef(name=ref.name, version=ref.version,
                                                                       arch="amd64", sha256="1" * 64), deb))
    with pytest.raises(VerificationError, match="differs from the index's"):
        importer.build_with_payload(_deb_stanza(deb, "2" * 64), archive=archive, arch=get_arch(ARCH),
                                    key=keys.alice, epoch=EPOCH, out_dir=tmp_path / "out")
