"""The package builder: recipe -> staging tree -> signed, reproducible ``.vpk``."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import composer
from composer import settings
from composer.arch import ELF_MACHINES, get_arch
from composer.errors import ComposerError, UserError, combine
from composer.fsutil import atomic_write, canonical_json, sha256_bytes, sha256_file, source_date_epoch
from composer.package import globs, projectsource, split
from composer.package import graph as graph_mod
from composer.package.archive import Staged, read_header, write_package
from composer.package.debian import DebianArchive
from composer.package.manifest import Entry, Manifest, reserved_errors
from composer.package.metadata import Metadata
from composer.package.recipe import Recipe, load_recipe
from composer.package.sources import DEB_KINDS, SOURCE_KINDS, Context, SdkProvider, SourceResult, archive_for
from composer.trust.keys import SigningKey
from composer.version import DebVersion, Version, VersionError, semver_projection

DEFAULT_ROLES: Sequence[tuple[str, Sequence[str]]] = (
    ("config", ("etc/**",)),
    ("doc", ("usr/share/doc/**", "usr/share/man/**", "usr/share/info/**", "usr/share/lintian/**")),
    ("binary", ("bin/**", "sbin/**", "usr/bin/**", "usr/sbin/**", "lib/**/*.so*", "usr/lib/**/*.so*",
                "boot/**", "lib/modules/**/*.ko", "usr/lib/modules/**/*.ko*", "usr/lib/**/*.efi*",
                "usr/lib/ISOLINUX/**", "usr/lib/syslinux/**", "init", "usr/libexec/**")),
)
STATE_FILE = ".vcomp-build-state.json"
# Bumped when the builder's output for the same inputs changes (invalidates build-all states).
BUILDER_REVISION = 4  # 4: metadata [elf] (soname provides, NEEDED lists; issue 19); 3: {deb_version} (issue 14)


def default_cache() -> Path:
    return settings.cache_dir()


@dataclass(frozen=True, slots=True, kw_only=True)
class Built:
    path: Path
    metadata: Metadata
    manifest: Manifest
    skipped: bool = False
    split: tuple[Built, ...] = ()     # NAME-dev and NAME-dbg made from [split] (composer.package.split)

    @property
    def sha256(self) -> str:
        return sha256_file(self.path)


def epoch_for(recipe: Recipe) -> int:
    if settings.SOURCE_DATE_EPOCH.get() is not None:
        return source_date_epoch()
    return int(recipe.data.get("build", {}).get("source-date-epoch", source_date_epoch()))


def role_of(rel: str, mode: int, rules: Mapping[str, Sequence[str]]) -> str:
    for role in ("config", "doc", "binary", "asset"):
        if globs.matches(rel, rules.get(role, ())):
            return role
    for role, patterns in DEFAULT_ROLES:
        if globs.matches(rel, patterns):
            return role
    return "binary" if mode & 0o111 else "asset"


def walk_tree(root: Path) -> Iterator[tuple[str, Path, os.stat_result]]:
    """(path relative to ``root``, full path, lstat) of everything below ``root``, directories in sorted order."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = Path(dirpath) / name
            yield str(full.relative_to(root)), full, full.lstat()


def scan_staging(staging: Path, rules: Mapping[str, Any]) -> list[Staged]:
    """Manifest entries for the staging tree: normalised modes, roles, sorted by path."""
    modes = {k.strip("/"): int(v, 8) for k, v in rules.get("modes", {}).items()}
    out: list[Staged] = []
    for rel, full, st in walk_tree(staging):
        if stat.S_ISLNK(st.st_mode):
            out.append(Staged(entry=Entry(path=rel, type="symlink", mode=0o777, target=os.readlink(full))))
        elif stat.S_ISDIR(st.st_mode):
            out.append(Staged(entry=Entry(path=rel, type="dir", mode=modes.get(rel, 0o755))))
        elif stat.S_ISREG(st.st_mode):
            default = 0o755 if st.st_mode & 0o111 else 0o644
            mode = modes.get(rel, default)
            out.append(Staged(entry=Entry(path=rel, type="file", mode=mode, role=role_of(rel, mode, rules)),
                              source=full))
        else:
            raise UserError(f"{rel}: special files cannot be packaged", hint="remove it from the sources")
    unused = set(modes) - {s.entry.path for s in out}
    if unused:
        raise UserError(f"files.modes names paths that are not in the package: {', '.join(sorted(unused))}",
                        hint="fix the paths in [files.modes]")
    return sorted(out, key=lambda s: s.entry.path)


def check_reserved(staged: Sequence[Staged], recipe: Recipe) -> None:
    """Refuse paths vcomp owns in a root (composer.reserved) before anything is packed."""
    errors = [UserError(e.message, hint=e.hint)
              for e in reserved_errors([s.entry for s in staged], recipe.name, str(recipe.path))]
    if errors:
        raise combine(errors, summary=f"{recipe.path}: package '{recipe.name}' ships {len(errors)} paths reserved "
                                      "for vcomp")


def elf_machine(path: Path) -> int | None:
    """The ELF e_machine of a file, or None when it is not ELF."""
    with path.open("rb") as f:
        head = f.read(20)
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    return int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")


def check_binaries(staged: Sequence[Staged], arch: str, recipe: Recipe, foreign: Sequence[str] = ()) -> None:
    """Every ELF file must be for the package's architecture; a noarch package holds none.

    ``foreign`` globs exempt files that run on another CPU mode, such as BIOS bootloader modules.
    """
    wrong: list[str] = []
    for item in staged:
        if item.entry.type != "file" or item.source is None or globs.matches(item.entry.path, foreign):
            continue
        machine = elf_machine(item.source)
        if machine is not None and (arch == "noarch" or ELF_MACHINES.get(machine, str(machine)) != arch):
            wrong.append(f"{item.entry.path} ({ELF_MACHINES.get(machine, f'e_machine {machine}')})")
    if wrong:
        shown = ", ".join(wrong[:5]) + (f" and {len(wrong) - 5} more" if len(wrong) > 5 else "")
        raise UserError(f"{recipe.path}: package '{recipe.name}' for {arch} contains binaries for another "
                        f"architecture: {shown}",
                        hint="check the sources' architecture (a stale download cache?) or set arch correctly")


def assemble_metadata(recipe: Recipe, results: Sequence[SourceResult], epoch: int) -> Metadata:
    d = recipe.data
    meta: dict[str, Any] = {k: d[k] for k in ("package", "dependencies", "relations", "features", "capabilities",
                                              "security", "boot", "actions") if k in d}
    meta["package"] = {**meta["package"], "arch": meta["package"].get("arch", recipe.arch.name)}
    meta.setdefault("security", {"context": "system_t"})
    extra: dict[str, dict[str, Any]] = {}
    for res in results:
        for section, values in res.metadata.items():
            target = extra.setdefault(section, {})
            for k, v in values.items():
                target[k] = target.get(k, []) + v if isinstance(v, list) else v
    if "driver" in d:
        extra.setdefault("driver", {"modules": []}).update({k: v for k, v in d["driver"].items()})
    if "kernel" in d:
        extra.setdefault("kernel", {}).update(d["kernel"])
    meta.update(extra)
    meta = _fill_deb_versions(meta, results, recipe)
    meta["provenance"] = {"recipe": recipe.digest, "source-date-epoch": epoch,
                          "sources": [p for r in results for p in r.provenance]}
    return Metadata.from_dict(meta)


def _fill_deb_versions(meta: dict[str, Any], results: Sequence[SourceResult], recipe: Recipe) -> dict[str, Any]:
    """Fill the Debian placeholders from the first .deb's version (design14 section 7).

    ``version = "{deb_version}"`` in ``[package]`` becomes the Debian version in full: ``version`` its SemVer
    projection, ``epoch``, ``revision``, ``upstream-version`` the original and ``version-scheme = "deb"``, so
    the package orders as dpkg orders (a revision 2 -> 3 is an upgrade). Elsewhere (``[relations]`` clauses)
    ``{deb_version}`` is the original text (``linux (= 6.1.192-3)``); ``{deb_release}`` is the projection
    without build metadata, for native Cargo requirements (``={deb_release}``: any build of that upstream)."""
    text = json.dumps(meta)
    if "{deb_version}" not in text and "{deb_release}" not in text:
        return meta
    debs = [p for r in results for p in r.provenance if p.get("kind") == "deb"]
    if not debs:
        raise UserError(f"{recipe.place('package', 'version')}: {{deb_version}} needs a Debian source",
                        hint="add a [[source]] of kind deb, kernel or kmod, or write the version out")
    original = str(debs[0]["version"])
    try:
        deb = DebVersion(text=original)
    except VersionError as exc:
        raise UserError(f"{recipe.place('package', 'version')}: the Debian source's version {original!r} is not "
                        f"a Debian version ({exc.message})", hint="set [package].version in the recipe") from None
    projection = semver_projection(deb.upstream)
    release = str(Version(major=projection.major, minor=projection.minor, patch=projection.patch))
    full_version = meta.get("package", {}).get("version") == "{deb_version}"
    filled: dict[str, Any] = json.loads(text.replace("{deb_version}", original).replace("{deb_release}", release))
    if full_version:
        package = {k: v for k, v in filled["package"].items()
                   if k not in ("epoch", "revision", "upstream-version", "version-scheme")}
        package.update({"version": str(projection), "upstream-version": original, "version-scheme": "deb"})
        package.update({"epoch": deb.epoch} if deb.epoch else {})
        package.update({"revision": deb.revision} if deb.revision else {})
        filled["package"] = package
    return filled


def output_name(meta: Metadata) -> str:
    return meta.file_name


def build(recipe_dir: Path, arch: str, key: SigningKey, out_dir: Path, *, cache: Path | None = None,
          archive: DebianArchive | None = None, recipe: Recipe | None = None,
          sdk_provider: SdkProvider | None = None, deps: Sequence[Path] = ()) -> Built:
    """Build one recipe; ``deps`` are the packages its ``[build] requires`` names, unpacked into $VCOMP_SYSROOT."""
    recipe = recipe or load_recipe(recipe_dir, arch)
    requires = recipe.data.get("build", {}).get("requires", [])
    if requires and not deps:
        raise UserError(f"{recipe.place('build', 'requires')}: recipe '{recipe.name}' builds against packages of "
                        f"other recipes ({', '.join(requires)})",
                        hint="build the recipe folder with vcomp pkg build-all (it builds those first)")
    archive = archive or DebianArchive(cache or default_cache())
    epoch = epoch_for(recipe)
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=f".build-{recipe.name}-") as tmp:
        staging = Path(tmp) / "root"
        staging.mkdir()
        scratch = Path(tmp) / "scratch"
        scratch.mkdir()
        ctx = Context(recipe=recipe, staging=staging, epoch=epoch, archive=archive, scratch=scratch,
                      sdk_provider=sdk_provider, sysroot=_sysroot(Path(tmp), deps, key) if deps else None)
        results = []
        for i, src in enumerate(recipe.sources):
            # a later command could edit staged files in place: only link when none follows
            ctx.link_files = not any(s["kind"] == "command" for s in recipe.sources[i + 1:])
            results.append(SOURCE_KINDS[src["kind"]].fill(src, ctx, i))
        meta = assemble_metadata(recipe, results, epoch)
        parts = split_staging(recipe, staging, Path(tmp))
        main = _pack(recipe, meta, staging, key, out_dir, epoch)
        subs = tuple(_pack(recipe, Metadata.from_dict(split.sub_metadata(meta.to_dict(), suffix, what)), root, key,
                           out_dir, epoch) for suffix, what, root in parts)
    return Built(path=main.path, metadata=main.metadata, manifest=main.manifest, split=subs)


def _sysroot(tmp: Path, deps: Sequence[Path], key: SigningKey) -> Path:
    """The build dependencies unpacked into one tree (verified against the builder's own key)."""
    from composer.package.extract import extract_package
    root = tmp / "sysroot"
    root.mkdir()
    for pkg in deps:
        extract_package(pkg, root, trusted=key.public, overwrite=True)
    return root


def split_staging(recipe: Recipe, staging: Path, tmp: Path) -> list[tuple[str, str, Path]]:
    """Move [split] files out of ``staging``: (suffix, description, root) of each extra package, dev first."""
    rules = split.SplitRules.from_recipe(recipe.data)
    parts: list[tuple[str, str, Path]] = []
    if rules.dev:
        root = tmp / "split-dev"
        split.move_dev(staging, root, rules.dev, recipe.place("split", "dev"))
        parts.append((split.DEV_SUFFIX, "development files", root))
    if rules.dbg:
        root = tmp / "split-dbg"
        split.split_debug(staging, root, recipe.arch, recipe.place("split", "dbg"))
        parts.append((split.DBG_SUFFIX, "debug symbols", root))
    return parts


def _pack(recipe: Recipe, meta: Metadata, root: Path, key: SigningKey, out_dir: Path, epoch: int) -> Built:
    root.mkdir(exist_ok=True)
    staged = scan_staging(root, recipe.data.get("files", {}) if root.name == "root" else {})
    check_reserved(staged, recipe)
    check_binaries(staged, meta.arch, recipe, recipe.data.get("files", {}).get("foreign", ()))
    path = out_dir / output_name(meta)
    meta, manifest = write_package(path, metadata=meta, staged=staged, key=key, epoch=epoch)
    return Built(path=path, metadata=meta, manifest=manifest)


# ------------------------------------------------------------------ build-all with an input cache

def recipe_inputs(recipe: Recipe, archive: DebianArchive, key: SigningKey,
                  deps: Sequence[tuple[str, str]] = ()) -> str:
    """Content digest of everything a build reads: recipe folder, resolved .debs, epoch, key, tool version,
    and the (file name, sha256) of each build dependency's package."""
    files = []
    for p in sorted(recipe.directory.rglob("*")):
        if p.is_symlink():
            files.append([str(p.relative_to(recipe.directory)), "link", os.readlink(p)])
        elif p.is_file():
            files.append([str(p.relative_to(recipe.directory)), oct(p.stat().st_mode & 0o111), sha256_file(p)])
    debs = []
    for src in recipe.sources:
        if src["kind"] in DEB_KINDS:
            ref = archive_for(archive, src).resolve(recipe.arch, src["package"], version=src.get("version", ""),
                                  follow=src.get("follow", ""))
            debs.append([ref.name, ref.version])
    project = [projectsource.source_id(recipe.directory, src, recipe.place("source", i, "path"))
               for i, src in enumerate(recipe.sources) if src["kind"] == "python-project"]
    plugins = sorted({(o.entry_point, o.distribution, o.version) for src in recipe.sources
                      if (o := SOURCE_KINDS.origin(str(src["kind"]))) is not None})
    sdks = [sdk_input(recipe, src) for src in recipe.sources if "sdk" in src]
    return sha256_bytes(canonical_json({
        "composer": composer.__version__, "builder": BUILDER_REVISION, "arch": recipe.arch.name,
        "files": files, "debs": debs, **({"project": project} if project else {}), **({"sdks": sdks} if sdks else {}),
        "epoch": epoch_for(recipe), "key": key.keyid,
        **({"plugins": [list(p) for p in plugins]} if plugins else {}),  # a plugin's source kind: its release
        **({"deps": sorted([list(d) for d in deps])} if deps else {}),   # [build] requires (issue 20)
    }))


def unchanged(out_dir: Path, prev: Mapping[str, Any]) -> bool:
    files = {prev["file"]: prev["sha256"], **{name: digest for name, digest in prev.get("split", ())}}
    return all((out_dir / name).is_file() and sha256_file(out_dir / name) == digest for name, digest in files.items())


def reread(path: Path) -> Built:
    header = read_header(path)
    return Built(path=path, metadata=header.metadata, manifest=header.manifest, skipped=True)


def sdk_input(recipe: Recipe, src: Mapping[str, Any]) -> str:
    """What an ``sdk = PROFILE`` source's SDK is made from: the profile's lock."""
    lock = (recipe.directory / str(src["sdk"])).resolve().with_suffix(".lock")
    try:
        return sha256_file(lock)
    except FileNotFoundError:
        return "no lock"        # the build reports it


def find_recipes(recipes_dir: Path) -> list[Path]:
    found = sorted(p.parent for p in recipes_dir.glob("*/recipe.toml"))
    if not found:
        raise UserError(f"{recipes_dir}: no recipes (no */recipe.toml)", hint="pass the folder holding recipes")
    return found


def supports(recipe_dir: Path, arch: str) -> bool:
    from composer.limits import load_toml
    try:
        doc = load_toml((recipe_dir / "recipe.toml").read_bytes(), "recipe.toml")
        archs = doc.get("build", {}).get("architectures")
    except (ValueError, ComposerError, OSError, AttributeError):
        return True  # let the build report the error
    return not archs or arch in archs


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildSet:
    """The recipes of a folder for one architecture, loaded (or the error loading them) and ordered."""
    loaded: Mapping[str, tuple[Path, Recipe | ComposerError]]   # recipe folder name -> (dir, recipe or error)
    graph: graph_mod.Graph


def load_set(recipes_dir: Path, arch: str, archive: DebianArchive,
             progress: Callable[[str, str], None] = lambda name, status: None) -> BuildSet:
    """Load every recipe for ``arch``, prefetch their Debian lookups and order them by ``[build] requires``."""
    loaded: dict[str, tuple[Path, Recipe | ComposerError]] = {}
    for rdir in find_recipes(recipes_dir):
        if not supports(rdir, arch):
            progress(rdir.name, "not for this architecture")
            continue
        try:
            loaded[rdir.name] = (rdir, load_recipe(rdir, arch))
        except ComposerError as exc:
            loaded[rdir.name] = (rdir, exc)  # reported in order
    prefetch(archive, arch, deb_sources([r for _, r in loaded.values() if isinstance(r, Recipe)]))
    nodes = [graph_mod.node_for(name, r.data if isinstance(r, Recipe) else {})
             for name, (_, r) in sorted(loaded.items())]
    return BuildSet(loaded=loaded, graph=graph_mod.plan(nodes))


def deb_sources(recipes: Sequence[Recipe]) -> list[dict[str, Any]]:
    """The Debian sources of ``recipes`` (plain data: a farm sends them to its workers)."""
    return [dict(s) for r in recipes for s in r.sources if s["kind"] in DEB_KINDS]


def prefetch(archive: DebianArchive, arch: str, sources: Sequence[Mapping[str, Any]]) -> None:
    """Every Debian lookup of ``sources`` in two apt-cache calls per suite instead of two per source."""
    specs: dict[DebianArchive, list[tuple[str, str]]] = {}
    for s in sources:
        specs.setdefault(archive_for(archive, s), []).append((str(s["package"]), str(s.get("follow", ""))))
    for suite_archive, suite_specs in specs.items():
        suite_archive.prefetch(get_arch(arch), suite_specs)


def blocker(bset: BuildSet, name: str, failed: Mapping[str, object]) -> ComposerError | None:
    """Why recipe ``name`` cannot be built now: its recipe error, an unknown requirement or a failed one."""
    loaded = bset.loaded[name][1]
    if isinstance(loaded, ComposerError):
        return loaded
    if name in bset.graph.unknown:
        return UserError(f"{loaded.place('build', 'requires')}: no recipe in the set builds "
                         f"{', '.join(bset.graph.unknown[name])}",
                         hint="name a package another recipe builds (NAME or NAME-dev with [split] dev)")
    bad = [d for d in bset.graph.needs[name] if d in failed]
    if bad:
        return UserError(f"not built: it needs {', '.join(bad)}, which failed",
                         hint="fix that recipe first; the rest of the set was built")
    return None


def dep_files(recipe: Recipe, provided: Mapping[str, Path]) -> list[Path]:
    """The package files of ``recipe``'s ``[build] requires`` (``provided``: package name -> built file)."""
    return [provided[str(n)] for n in recipe.data.get("build", {}).get("requires", ())]


def dep_inputs(paths: Sequence[Path]) -> list[tuple[str, str]]:
    return [(p.name, sha256_file(p)) for p in paths]


def provided_by(result: Built) -> dict[str, Path]:
    return {b.metadata.name: b.path for b in (result, *result.split)}


def build_all(recipes_dir: Path, arch: str, key: SigningKey, out_dir: Path, *, cache: Path | None = None,
              progress: Callable[[str, str], None] = lambda name, status: None,
              sdk_provider: SdkProvider | None = None) -> list[Built]:
    """Build every recipe in ``recipes_dir`` serially, in ``[build] requires`` order, skipping unchanged ones."""
    archive = DebianArchive(cache or default_cache())
    out_dir = out_dir.resolve()
    state_path = out_dir / STATE_FILE
    try:
        state: dict[str, Any] = json.loads(state_path.read_text())
    except (FileNotFoundError, ValueError):
        state = {}
    built: list[Built] = []
    errors: list[ComposerError] = []
    failed: dict[str, ComposerError] = {}
    provided: dict[str, Path] = {}
    bset = load_set(recipes_dir, arch, archive, progress)
    for name in bset.graph.order:
        rdir, loaded = bset.loaded[name]
        try:
            problem = blocker(bset, name, failed)
            if problem is not None or not isinstance(loaded, Recipe):
                raise problem or UserError("not loaded")
            recipe = loaded
            deps = dep_files(recipe, provided)
            digest = recipe_inputs(recipe, archive, key, dep_inputs(deps))
            key_name = f"{recipe.name}/{arch}"
            prev = state.get(key_name)
            if prev and prev["inputs"] == digest and unchanged(out_dir, prev):
                header = read_header(out_dir / prev["file"])
                subs = tuple(reread(out_dir / name) for name, _ in prev.get("split", ()))
                result = Built(path=out_dir / prev["file"], metadata=header.metadata,
                               manifest=header.manifest, skipped=True, split=subs)
                built.append(result)
                provided.update(provided_by(result))
                progress(recipe.name, "unchanged")
                continue
            progress(recipe.name, "building")
            result = build(rdir, arch, key, out_dir, archive=archive, recipe=recipe, sdk_provider=sdk_provider,
                           deps=deps)
            state[key_name] = record(digest, result)
            atomic_write(state_path, json.dumps(state, indent=1, sort_keys=True).encode())
            built.append(result)
            provided.update(provided_by(result))
            progress(recipe.name, f"built {result.path.name}")
        except ComposerError as exc:
            failed[name] = exc
            errors.append(UserError(f"{rdir.name}: {exc.message}", hint=exc.hint))
            progress(rdir.name, "FAILED")
    if errors:
        raise combine(errors, summary=f"{len(errors)} of the recipes in {recipes_dir} failed to build")
    return built


def record(digest: str, result: Built) -> dict[str, Any]:
    """The build-state entry of a result (the split packages in build order)."""
    entry: dict[str, Any] = {"inputs": digest, "file": result.path.name, "sha256": result.sha256}
    if result.split:
        entry["split"] = [[b.path.name, b.sha256] for b in result.split]
    return entry
