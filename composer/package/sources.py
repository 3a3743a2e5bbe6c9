"""Source kinds of a recipe: each fills the staging tree and reports provenance and metadata.

A registry maps ``kind`` to a row holding its function; adding a kind is adding a row, or a row another
distribution adds through the ``vcomp.sources`` entry point (docs/plugins.md): a plugin's row brings the JSON
schema of its source table, which completes schemas/recipe.schema.json (:func:`recipe_schema`).
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from composer.arch import Arch
from composer.errors import ComposerError, ToolError, UserError
from composer.package import globs, kmod, projectsource, pythonsource, wheel
from composer.package.debian import DEFAULT_SUITE, DebianArchive, DebRef
from composer.package.manifest import check_relpath
from composer.plugins.registry import Registry
from composer.run import Result, confine, require_tool, run

# Tools every command source may use without declaring them.
BASE_TOOLS = ("sh", "cat", "chmod", "cp", "date", "echo", "find", "grep", "head", "install", "ln", "ls",
              "mkdir", "mv", "printf", "rm", "sed", "sort", "tail", "touch", "tr", "true", "false", "test",
              "uname", "wc", "env", "basename", "dirname", "xargs")


class RecipeView(Protocol):
    """What a source kind reads of the recipe it fills (a :class:`composer.package.recipe.Recipe`)."""

    @property
    def directory(self) -> Path: ...                # the recipe's folder
    @property
    def data(self) -> Mapping[str, Any]: ...        # recipe.toml merged for the target architecture
    @property
    def arch(self) -> Arch: ...
    @property
    def name(self) -> str: ...

    def place(self, *path: str | int) -> str:       # "recipe.toml:LINE:COL" of a key, for errors
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SdkRef:
    """An SDK a command source builds with (composer.sdk makes them; the builder only uses them)."""

    path: Path
    name: str            # PROFILE-ARCH
    tree_sha256: str     # the SDK manifest's digest of the whole tree


class SdkProvider(Protocol):
    """The SDK of a profile (its YAML path) for an architecture, built when missing: composer.sdk.assemble.provider
    (passed in by the caller, so the builder does not depend on composer.sdk)."""

    def __call__(self, profile: Path, arch: str) -> SdkRef: ...


@dataclass(slots=True, kw_only=True)
class Context:
    recipe: RecipeView
    staging: Path
    epoch: int
    archive: DebianArchive
    scratch: Path
    link_files: bool = False   # hard-link staged files to their sources (no later command may edit them)
    sdk_provider: SdkProvider | None = None   # for command sources with sdk = PROFILE
    sysroot: Path | None = None   # the [build] requires packages, unpacked ($VCOMP_SYSROOT of command sources)

    @property
    def arch(self) -> Arch:
        return self.recipe.arch


@dataclass(slots=True, kw_only=True)
class SourceResult:
    provenance: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


def _dest(ctx: Context, spec: Mapping[str, Any], index: int, rel: str) -> Path:
    prefix = str(spec.get("dest", "")).strip("/")
    full = f"{prefix}/{rel}" if prefix else rel
    why = check_relpath(full)
    if why:
        raise UserError(f"{ctx.recipe.place('source', index)}: destination '{full}' {why}",
                        hint="destinations are relative paths inside the package")
    return ctx.staging / full


def copy_entry(src: Path, dst: Path, *, link: bool = False) -> None:
    """Copy one file, symlink or directory (not its contents) into the staging tree.

    With ``link`` a regular file is hard-linked instead of copied when both are on one filesystem:
    staged files are only read afterwards, and a later source replaces a file by unlinking it first.
    """
    if dst.is_symlink() or (dst.exists() and not dst.is_dir()):
        dst.unlink()
    if not dst.parent.is_dir():
        dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        dst.mkdir(exist_ok=True)
        shutil.copymode(src, dst)
    elif src.is_file():
        if link:
            try:
                os.link(src, dst, follow_symlinks=False)
                return
            except OSError:
                pass  # another filesystem, or links not allowed: copy
        shutil.copy2(src, dst, follow_symlinks=False)
    else:
        raise UserError(f"{src}: special files (devices, fifos, sockets) cannot be packaged from a tree")


def _walk(root: Path) -> list[str]:
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(dirnames + filenames):
            out.append(str((base / name).relative_to(root)))
    return sorted(out)


def source_tree(spec: Mapping[str, Any], ctx: Context, index: int) -> SourceResult:
    src = (ctx.recipe.directory / spec["path"]).resolve()
    if not src.is_relative_to(ctx.recipe.directory.resolve()) or not src.is_dir():
        raise UserError(f"{ctx.recipe.place('source', index, 'path')}: '{spec['path']}' is not a directory "
                        "inside the recipe", hint="tree sources name a folder beside recipe.toml")
    for rel in _walk(src):
        copy_entry(src / rel, _dest(ctx, spec, index, rel), link=ctx.link_files)
    return SourceResult(provenance=[{"kind": "tree", "path": str(spec["path"])}])


def archive_for(archive: DebianArchive, spec: Mapping[str, Any]) -> DebianArchive:
    """The archive of the Debian suite a deb, kernel or kmod source names (``suite``, default trixie)."""
    return archive.for_suite(str(spec.get("suite", DEFAULT_SUITE)))


def _fetch(spec: Mapping[str, Any], ctx: Context) -> tuple[DebRef, Path]:
    return archive_for(ctx.archive, spec).fetch(ctx.arch, str(spec["package"]), version=str(spec.get("version", "")),
                             follow=str(spec.get("follow", "")))


def _import(root: Path, paths: list[str], spec: Mapping[str, Any], ctx: Context, index: int) -> int:
    include = list(spec.get("include", ["**"]))
    exclude = list(spec.get("exclude", []))
    rename: Mapping[str, str] = spec.get("rename", {})
    count = 0
    for rel in paths:
        if not globs.matches(rel, include) or globs.matches(rel, exclude):
            continue
        target = next((to for pat, to in rename.items() if globs.match_exact(rel, pat)), rel)
        copy_entry(root / rel, _dest(ctx, spec, index, target), link=ctx.link_files)
        count += 1
    if count == 0:
        raise UserError(f"{ctx.recipe.place('source', index)}: nothing in Debian package '{spec['package']}' "
                        f"matches include={include}", hint="list the package's files with: dpkg-deb -c FILE.deb")
    return count


def source_deb(spec: Mapping[str, Any], ctx: Context, index: int) -> SourceResult:
    ref, root = _fetch(spec, ctx)
    _import(root, _walk(root), spec, ctx, index)
    return SourceResult(provenance=[ref.to_provenance()])


# The kernel image becomes boot/vmlinuz; modules keep the release's layout (lib/modules in Debian 12,
# usr/lib/modules in Debian 13) and compression (docs/base-layout.md).
KERNEL_IMAGES = ("vmlinuz", "vmlinux")   # boot/NAME-RELEASE in a linux-image package (riscv64: vmlinux)


def source_kernel(spec: Mapping[str, Any], ctx: Context, index: int) -> SourceResult:
    ref, root = _fetch(spec, ctx)
    tree = kmod.ModuleTree.scan(root)
    rel = tree.release
    images = [f"boot/{name}-{rel}" for name in KERNEL_IMAGES]
    image = next((i for i in images if (root / i).is_file()), None)
    if image is None:
        raise UserError(f"{ctx.recipe.place('source', index)}: Debian package '{ref.name}' has no "
                        f"{' or '.join(images)}", hint="name a linux-image package")
    wanted = {image: "boot/vmlinuz", f"boot/config-{rel}": f"boot/config-{rel}"}
    for name in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
        wanted[f"{tree.base}/{rel}/{name}"] = f"{tree.base}/{rel}/{name}"
    for src, dst in wanted.items():
        if (root / src).exists():
            copy_entry(root / src, _dest(ctx, spec, index, dst))
    return SourceResult(provenance=[ref.to_provenance()],
                        metadata={"kernel": {"release": rel, "image": "boot/vmlinuz",
                                             "format": ctx.arch.kernel_format}})


def source_kmod(spec: Mapping[str, Any], ctx: Context, index: int) -> SourceResult:
    ref, root = _fetch(spec, ctx)
    tree = kmod.ModuleTree.scan(root)
    try:
        order, builtin = kmod.load_order(tree, lambda name: tree.depends(root, name), spec["modules"],
                                         spec.get("exclude", ()))
    except UserError as exc:
        raise UserError(f"{ctx.recipe.place('source', index, 'modules')}: {exc.message}", hint=exc.hint) from None
    for path in order:
        rel = f"{tree.base}/{tree.release}/{path}"
        copy_entry(root / rel, _dest(ctx, spec, index, rel), link=ctx.link_files)
    return SourceResult(provenance=[ref.to_provenance()],
                        metadata={"driver": {"kernel": tree.release, "modules": order, "builtin": builtin}})


def source_links(spec: Mapping[str, Any], ctx: Context, index: int) -> SourceResult:
    for link, target in sorted(spec["links"].items()):
        dst = _dest(ctx, spec, index, link.strip("/"))
        if dst.is_symlink() or dst.exists():
            dst.unlink()
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, dst)
    return SourceResult()


def source_python_project(spec: Mapping[str, Any], ctx: Context, index: int) -> SourceResult:
    """A directory of the project the recipe belongs to (docs/packages/recipes.md, kind python-project)."""
    place = ctx.recipe.place("source", index, "path")
    if "tree" not in spec:
        tree = projectsource.scan(ctx.recipe.directory, spec, place)
        for e in tree.entries:
            copy_entry(tree.directory / e.rel, _dest(ctx, spec, index, e.rel))
        return SourceResult(provenance=[{"kind": "python-project", "path": tree.rel,
                                         "git-tree": projectsource.tree_id(tree)}])
    found = projectsource.pinned(ctx.recipe.directory, spec, place)
    if isinstance(found, projectsource.ProjectTree):
        for e in found.entries:
            copy_entry(found.directory / e.rel, _dest(ctx, spec, index, e.rel))
    else:
        for p in found:
            _write_pinned(p, _dest(ctx, spec, index, p.rel))
    return SourceResult(provenance=[{"kind": "python-project", "path": str(spec["path"]), "git-tree": spec["tree"]}])


def source_python(spec: Mapping[str, Any], ctx: Context, index: int) -> SourceResult:
    """A pure-Python project (pyproject.toml) built into its wheel, installed for the image's python3
    (docs/packages/python.md)."""
    place = ctx.recipe.place("source", index)
    project = pythonsource.find_project(ctx.recipe.directory, spec, place)
    work = Path(tempfile.mkdtemp(dir=ctx.scratch, prefix="python-"))
    name, data = pythonsource.build_wheel(project, scratch=work, epoch=ctx.epoch, place=place,
                                          timeout=float(spec.get("timeout", 1800)))
    built = wheel.read_wheel(data, f"{place}: {name}")
    files = wheel.install(built)
    for f in files:
        dst = _dest(ctx, spec, index, f.path)
        if dst.is_symlink() or dst.exists():
            dst.unlink()
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(f.data)
        dst.chmod(f.mode)
    # sha256: of the installed RECORD, which names every installed file's hash (the wheel's zip bytes vary)
    return SourceResult(provenance=[{"kind": "python", "path": str(spec.get("path", ".")), "name": built.name,
                                     "version": built.version, "sha256": wheel.record_digest(files)}])


def _write_pinned(entry: projectsource.PinnedEntry, dst: Path) -> None:
    """One entry of a pinned git tree into the staging tree (modes as git records them: 0755 or 0644)."""
    if dst.is_symlink() or (dst.exists() and not dst.is_dir()):
        dst.unlink()
    dst.parent.mkdir(parents=True, exist_ok=True)
    if entry.kind == "dir":
        dst.mkdir(mode=0o755, exist_ok=True)
    elif entry.kind == "link":
        os.symlink(entry.data.decode("utf-8", "surrogateescape"), dst)
    else:
        dst.write_bytes(entry.data)
        dst.chmod(0o755 if entry.kind == "exec" else 0o644)


def source_command(spec: Mapping[str, Any], ctx: Context, index: int) -> SourceResult:
    """Run build commands in a clean environment: declared tools only, fixed locale/time, DESTDIR."""
    tools = sorted({*BASE_TOOLS, *spec.get("tools", [])})
    bindir = Path(tempfile.mkdtemp(dir=ctx.scratch, prefix="bin-"))
    for tool in tools:
        os.symlink(require_tool(tool), bindir / tool)
    work = ctx.scratch / f"work-{index}"
    src = ctx.recipe.directory / spec.get("workdir", ".")
    shutil.copytree(src, work, symlinks=True, ignore=shutil.ignore_patterns("recipe.toml"))
    home = Path(tempfile.mkdtemp(dir=ctx.scratch, prefix="home-"))
    host = os.uname().machine
    env = {
        "PATH": str(bindir), "HOME": str(home), "TMPDIR": "/tmp", "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8", "TZ": "UTC", "SOURCE_DATE_EPOCH": str(ctx.epoch), "DESTDIR": str(ctx.staging),
        "VCOMP_ARCH": ctx.arch.name, "VCOMP_DEB_ARCH": ctx.arch.deb, "TARGET_TRIPLE": ctx.arch.triple,
        "CROSS_COMPILE": "" if host == ctx.arch.name else f"{ctx.arch.triple}-",
        "CC": f"{ctx.arch.triple}-gcc",
        "PKG_NAME": ctx.recipe.name, "PKG_VERSION": str(ctx.recipe.data["package"]["version"]),
    }
    script, readable = str(spec["run"]), [bindir]
    provenance = [{"kind": "command", "path": str(spec.get("workdir", "."))}]
    if ctx.sysroot is not None:
        env["VCOMP_SYSROOT"] = str(ctx.sysroot)
        readable.append(ctx.sysroot)
    if "sdk" in spec:
        sdk = _sdk_for(spec, ctx, index)
        env["VCOMP_SDK"] = str(sdk.path)
        script = SDK_PRELUDE.format(arch=ctx.arch.name) + script
        readable.append(sdk.path)
        provenance.append({"kind": "sdk", "name": sdk.name, "sha256": sdk.tree_sha256})
    argv = confine(["/bin/sh", "-ec", script], cwd=work, writable=[work, ctx.staging, home], readable=readable)
    result = run(argv, cwd=work, env=env, clean_env=True, timeout=float(spec.get("timeout", 3600)), umask=0o022,
                 check=False)
    if result.returncode != 0:
        raise command_failed(ctx, index, result)
    return SourceResult(provenance=list(provenance))


# A command with ``sdk = PROFILE`` runs with the SDK's environment (docs/sdk.md); paths in debug info and
# build-ids stay the same wherever the SDK and the work directory are.
SDK_PRELUDE = ('. "$VCOMP_SDK/environment-setup-{arch}"\n'
               'maps="-ffile-prefix-map=$VCOMP_SDK/sysroot=/ -ffile-prefix-map=$VCOMP_SDK=/sdk '
               '-ffile-prefix-map=$PWD=."\n'
               'export CFLAGS="$CFLAGS $maps" CXXFLAGS="$CXXFLAGS $maps" CGO_CFLAGS="$CGO_CFLAGS $maps"\n'
               'export RUSTFLAGS="$RUSTFLAGS --remap-path-prefix=$PWD=."\n')


def _sdk_for(spec: Mapping[str, Any], ctx: Context, index: int) -> SdkRef:
    """The SDK of ``sdk = PROFILE`` (a path relative to the recipe) for the recipe's architecture."""
    place = ctx.recipe.place("source", index, "sdk")
    profile = (ctx.recipe.directory / str(spec["sdk"])).resolve()
    if not profile.is_file():
        raise UserError(f"{place}: no profile {profile}",
                        hint="sdk names a profile (YAML) relative to the recipe directory, with its lock beside it")
    if ctx.sdk_provider is None:
        raise UserError(f"{place}: this build has no SDK provider",
                        hint="build it with vcomp pkg build or build-all (they make the SDK)")
    return ctx.sdk_provider(profile, ctx.arch.name)


# What a confined command prints when it tries to leave the sandbox, and what that means.
ESCAPES = (("Read-only file system", "tried to write outside its build directory"),
           ("Network is unreachable", "tried to use the network"),
           ("Temporary failure in name resolution", "tried to use the network"),
           ("Could not resolve host", "tried to use the network"))
_QUOTED = re.compile("['\"\u2018\u201c](/[^'\"\u2019\u201d]*)['\"\u2019\u201d]")


def _named_path(line: str, needle: str) -> str:
    """The path a tool's error line names: the first quoted absolute path, else the one before the error."""
    found = _QUOTED.search(line) or re.search(r"(/[^\s:'\"]+):\s*" + re.escape(needle), line)
    if not found:
        return line.strip()
    path = found.group(1)
    if os.path.islink(path):  # a link the step made in DESTDIR to reach outside: name both
        return f"{path} -> {os.path.realpath(path)}"
    return path


def command_failed(ctx: Context, index: int, result: Result) -> ComposerError:
    """One line naming the recipe, the step and, for a sandbox refusal, the path it tried to write."""
    where = f"{ctx.recipe.place('source', index)}: recipe '{ctx.recipe.name}', step {index + 1} (command)"
    lines = (result.stderr + result.stdout).decode(errors="replace").strip().splitlines()
    hint = ("build steps run confined: they may write only to their working directory, \"$DESTDIR\" and "
            "\"$TMPDIR\", and have no network (fetch sources with a deb or tree source)")
    setup = next((line for line in lines if line.startswith("bwrap: ")), None)
    if setup is not None and result.returncode == 1:
        return ToolError(f"{where}: the build sandbox could not start ({setup})",
                         hint="bubblewrap needs root or unprivileged user namespaces "
                              "(sysctl kernel.unprivileged_userns_clone=1); in a container, allow mount namespaces")
    for line in lines:
        for needle, what in ESCAPES:
            if needle in line:
                if what.endswith("directory"):
                    return UserError(f"{where} {what}: {_named_path(line, needle)}", hint=hint)
                return UserError(f"{where} {what}", hint=hint)
    tail = lines[-12:]
    return ToolError(f"{where} failed (exit {result.returncode}):\n    " + "\n    ".join(tail),
                     hint="see the command's output above; run it by hand in the recipe folder to debug")


Fill = Callable[[Mapping[str, Any], Context, int], SourceResult]


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceKind:
    """One ``kind`` of a recipe's ``[[source]]``: the function that fills the staging tree from its table."""

    name: str
    fill: Fill                                   # (the source table, the build's context, its index)
    summary: str = ""                            # one line for docs and ``vcomp plugins``
    schema: Mapping[str, Any] | None = None      # a plugin's: the JSON schema of its table (the built-ins' are in
                                                 # schemas/recipe.schema.json); "kind" is added to its properties


def plugin_problem(kind: SourceKind) -> str:
    """What is wrong with a plugin's source kind ("" when nothing; composer.plugins.load refuses it with that)."""
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,31}", kind.name):
        return f"name '{kind.name}' is not 1-32 of a-z, 0-9, '-' starting with a letter"
    if not callable(kind.fill):
        return "fill must be a function (source table, Context, index) -> SourceResult"
    if not isinstance(kind.schema, Mapping) or kind.schema.get("type") != "object":
        return "schema must be the JSON schema of its source table: {'type': 'object', 'properties': {...}}"
    try:
        Draft202012Validator.check_schema(dict(kind.schema))
    except SchemaError as exc:
        return f"its schema is not a JSON schema: {exc.message}"
    return ""


SOURCE_KINDS: Registry[SourceKind] = Registry((
    SourceKind(name="tree", fill=source_tree, summary="a folder beside recipe.toml"),
    SourceKind(name="deb", fill=source_deb, summary="files of a Debian package"),
    SourceKind(name="kernel", fill=source_kernel, summary="a Debian linux-image package's kernel"),
    SourceKind(name="kmod", fill=source_kmod, summary="kernel modules of a Debian package, in load order"),
    SourceKind(name="links", fill=source_links, summary="symbolic links"),
    SourceKind(name="command", fill=source_command, summary="build commands, confined"),
    SourceKind(name="python-project", fill=source_python_project,
               summary="a Python package directory of this project (the vpk package)"),
    SourceKind(name="python", fill=source_python,
               summary="a pure-Python project (pyproject.toml) built into its wheel, installed for python3"),
), group="vcomp.sources", kind="source kind", row_type=SourceKind, name_of=lambda k: k.name, check=plugin_problem)


def recipe_schema(document: Mapping[str, Any]) -> dict[str, Any] | None:
    """schemas/recipe.schema.json completed with the plugins' source kinds (None when there are none: the
    committed schema is the whole one)."""
    added = SOURCE_KINDS.plugin_rows()
    if not added:
        return None
    doc = copy.deepcopy(dict(document))
    source = doc["$defs"]["source"]
    source["properties"]["kind"]["enum"] = [*source["properties"]["kind"]["enum"], *added]
    for name, kind in added.items():
        table = copy.deepcopy(dict(kind.schema or {}))
        table["properties"] = {"kind": True, **table.get("properties", {})}
        table.setdefault("additionalProperties", False)
        source["allOf"].append({"if": {"properties": {"kind": {"const": name}}}, "then": table})
    return doc


# Kinds whose inputs come from the Debian archive (resolved before a build to key the cache).
DEB_KINDS = frozenset({"deb", "kernel", "kmod"})
