"""`vcomp build`: a locked profile becomes images/NAME/ARCH/ (outputs, manifest, SBOM, provenance).

Steps per architecture: refuse a stale lock; derive the build's seed (sha256 of the canonical inputs:
builder revision, architecture, profile bytes, overlay files, locked packages, outputs, epoch, tool
versions); take every output whose key is in the content-addressed cache (files checked against their
recorded sha256 while copied; a damaged entry is removed and rebuilt); for the rest fetch and
verify the locked packages, install them into a fresh root, configure it from the profile and build
the outputs; write the manifest, the SPDX SBOM and the in-toto provenance. Every architecture is
built into one new generation (composer.compose.layout) that becomes current with one rename, under
the images directory's lock; a failure or a kill leaves the previous images/NAME/ARCH/ untouched.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from composer import oserrors, settings
from composer.arch import get_arch
from composer.caches.images import KIND
from composer.compose import layout
from composer.compose.cache import cap_caches, describe, from_cache, from_shared, to_cache, to_shared
from composer.compose.gitsource import profile_source
from composer.compose.licensetexts import ship as ship_texts
from composer.compose.seed import build_seed, output_key, tool_versions
from composer.errors import UserError
from composer.farm import imageshare
from composer.fsutil import atomic_write, canonical_json, sha256_file
from composer.image.outputs import OUTPUT_TYPES
from composer.image.secureboot import SecureBootKey
from composer.image.workshop import BuiltOutput, OutputJob, Workshop
from composer.notices import Say, notice
from composer.package.debian import DebianArchive
from composer.pkgmgr import initkinds
from composer.pkgmgr.configure import configure
from composer.pkgmgr.db import save_repositories
from composer.pkgmgr.install import fetch_locked, install, installed, locked_packages
from composer.profile.model import Profile
from composer.report import dsse
from composer.report.cyclonedx import cyclonedx
from composer.report.provenance import provenance
from composer.report.sbom import spdx
from composer.rootfs import Root
from composer.run import require_tool
from composer.solve.lockmodel import Lock
from composer.solve.sources import Sources
from composer.trust.keys import SigningKey

MANIFEST = layout.MANIFEST
CONTENTS = layout.CONTENTS
SIGNED_PROVENANCE = "provenance.intoto.dsse.json"  # the provenance in a DSSE envelope (vcomp build --sign-key)

@dataclass(frozen=True, slots=True, kw_only=True)
class Attest:
    """How the provenance is attested: signed with ``sign_key`` (a DSSE envelope beside it) and naming
    ``source``, the git commit of the profile's repository (composer.compose.gitsource)."""

    sign_key: SigningKey | None = None
    source: Mapping[str, object] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchBuild:
    arch: str
    directory: Path
    products: tuple[BuiltOutput, ...]
    cached: tuple[str, ...]      # outputs taken from the cache
    manifest: Mapping[str, Any]
    stale: tuple[str, ...] = ()  # outputs kept from an earlier build of other inputs (build --output)

    def to_dict(self) -> dict[str, Any]:
        """What ``vcomp build --json`` reports of one architecture, from its manifest (pure)."""
        return {"arch": self.arch, "directory": str(self.directory), "profile": self.manifest["profile"],
                "lock_digest": self.manifest["lock-digest"], "inputs": self.manifest["inputs"],
                "outputs": [{"name": o["name"], "type": o["type"], "firmware": list(o["firmware"]),
                             "files": [{"path": str(self.directory / f["path"]), "sha256": f["sha256"],
                                        "size": f["size"]} for f in o["files"]],
                             "cached": o["name"] in self.cached, "stale": bool(o.get("stale", False))}
                            for o in self.manifest["outputs"]]}


def targets_for(profile: Profile, arch: str, only: Sequence[str] = ()) -> list[OutputJob]:
    names = [o.name for o in profile.outputs]
    unknown = sorted(set(only) - set(names))
    if unknown:
        raise UserError(f"no output named {', '.join(unknown)} in {profile.path}", hint=f"outputs: {', '.join(names)}")
    jobs = [OutputJob(name=o.name, type=o.type, options=o.options,
                      firmware=OUTPUT_TYPES[o.type].firmware_for(arch, o.options))
            for o in profile.outputs if arch in o.architectures and (not only or o.name in only)]
    initkinds.check_outputs(profile.init, [(t.name, t.type) for t in jobs], str(profile.path))
    return jobs


def check_tools(targets: Sequence[OutputJob]) -> None:
    """Every host tool the outputs' builders run (their registry rows say which) is there, before any work."""
    for t in targets:
        for tool in OUTPUT_TYPES[t.type].tools_for(t.options, t.firmware):
            require_tool(tool)


# ---------------------------------------------------------------- the build


def build_profile(top: Path, profile: Profile, lock: Lock, lock_digest: str, sources: Sources,
                  jobs: Mapping[str, Sequence[str]], cache: Path, *, epoch: int,
                  say: Callable[[str], None] = lambda _m: None, warn: Say = notice,
                  sign_key: SigningKey | None = None) -> list[ArchBuild]:
    """Build ``jobs`` (architecture -> outputs, empty: all) into a new generation of ``top`` (images/NAME,
    whose lock the caller holds: :func:`composer.compose.layout.locked`) and switch to it in one step.
    The architectures not built are carried over unchanged; a failure leaves the previous outputs.
    ``sign_key``: also write the provenance signed in a DSSE envelope."""
    for arch in jobs:
        get_arch(arch)  # an unknown architecture is a clear error before any work
        if not targets_for(profile, arch, jobs[arch]):
            raise UserError(f"no outputs for {arch} in {profile.path}", hint="add one under 'outputs:'")
    from composer.caches.ops import cap_from_env
    cap_from_env()  # a bad VCOMP_CACHE_MAX is an error before any work
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise oserrors.fault(exc, "creating the image cache") from None
    source = profile_source(profile.path)
    gen = layout.new_generation(top)
    try:
        built = [build_arch(profile, lock, lock_digest, sources, arch, top / arch, gen / arch, cache,
                            only=jobs[arch], epoch=epoch, say=say, warn=warn,
                            attest=Attest(sign_key=sign_key, source=source)) for arch in jobs]
        for arch in layout.built_arches(top):
            if arch not in jobs:
                layout.carry_tree(top / arch, gen / arch)
        layout.switch(top, gen)
    except BaseException as exc:
        shutil.rmtree(gen, ignore_errors=True)
        if isinstance(exc, OSError) and exc.filename is None:  # a write() that names no file: say where
            raise oserrors.fault(exc, f"building {top} (work files in {tempfile.gettempdir()})") from None
        raise
    if cache.name == KIND:  # the image kind of a cache root (as the CLI passes it): cap that root
        cap_caches(cache.parent, say)
    return [replace(b, directory=top / b.arch,
                    products=tuple(replace(p, files=tuple(top / b.arch / f.name for f in p.files))
                                   for p in b.products)) for b in built]


def build_arch(profile: Profile, lock: Lock, lock_digest: str, sources: Sources, arch_name: str,
               previous: Path, staging: Path, cache: Path, *, only: Sequence[str] = (), epoch: int,
               say: Callable[[str], None] = lambda _m: None, warn: Say = notice,
               attest: Attest = Attest()) -> ArchBuild:
    """One architecture into ``staging`` (inside the new generation); ``previous`` is its current directory."""
    targets = targets_for(profile, arch_name, only)
    check_tools(targets)
    shared = imageshare.from_settings()   # VCOMP_SHARED_CACHE (a bad setting is an error before any work)
    tools = tool_versions()
    seed = build_seed(profile, lock, arch_name, epoch, tools, lock_digest)  # keys the cache
    ids = build_seed(profile, lock, arch_name, epoch)  # derives UUIDs and volume ids
    staging.mkdir(parents=True)
    staging.chmod(0o755)
    current = {"inputs": seed, "profile-digest": profile.digest, "lock-digest": lock_digest}
    products: dict[str, BuiltOutput] = {}
    origin: dict[str, dict[str, Any]] = {}
    if only:  # --output X replaces only X: the other outputs stay, marked stale when built from other inputs
        for name, (product, record) in carry_outputs(previous, staging, [t.name for t in targets],
                                                          warn=warn).items():
            products[name], origin[name] = product, record
    cached = []
    for t in targets:
        if not OUTPUT_TYPES[t.type].cacheable(t.options):
            continue   # an output with a directory beside its files (an A/B disk's update bundle): made again
        hit = from_cache(cache, output_key(seed, t), staging, warn=warn)
        where = "the cache"
        if hit is None:
            hit = from_shared(shared, cache, output_key(seed, t), staging, name=t.name, type_=t.type, warn=warn)
            where = "the shared cache"
        if hit is not None:
            products[t.name] = hit
            cached.append(t.name)
            say(f"{arch_name}: {t.name} ({t.type}) unchanged: taken from {where}")
    missing = [t for t in targets if t.name not in cached]
    if not missing and (not (staging / CONTENTS).is_file()
                        or (profile.licenses.texts and not (staging / layout.LICENSE_TEXTS).is_file())):
        missing, cached = list(targets), []  # an entry of an older cache format: no contents.json or texts list
    if missing:
        for p in make_products(profile, lock, lock_digest, sources, arch_name, missing, staging, seed=ids,
                               epoch=epoch, say=say):
            products[p.name] = p
            if not OUTPUT_TYPES[p.type].cacheable(next(t for t in targets if t.name == p.name).options):
                continue
            key = output_key(seed, next(t for t in targets if t.name == p.name))
            to_cache(cache, key, p, staging / CONTENTS, warn=warn)
            to_shared(shared, key, p, staging / CONTENTS, warn=warn)
    for t in targets:
        origin[t.name] = dict(current)
    order = [t.name for t in targets_for(profile, arch_name)]
    ordered = tuple(products[n] for n in [*order, *sorted(set(products) - set(order))] if n in products)
    manifest = write_records(staging, profile, lock, lock_digest, arch_name, ordered, seed=seed, tools=tools,
                             epoch=epoch, origin=origin, attest=attest)
    stale = tuple(o["name"] for o in manifest["outputs"] if o["stale"])
    return ArchBuild(arch=arch_name, directory=staging, products=ordered, cached=tuple(cached), manifest=manifest,
                     stale=stale)


def carry_outputs(previous: Path, staging: Path, rebuilt: Sequence[str], *,
                  warn: Say = notice) -> dict[str, tuple[BuiltOutput, dict[str, Any]]]:
    """The previous build's outputs not being rebuilt, linked into the new directory with their boot logs,
    each with the inputs it was built from (a file changed on disk since is kept and marked so)."""
    if not (previous / MANIFEST).is_file():
        return {}
    try:
        before = read_manifest(previous)
        outputs = [o for o in before["outputs"] if o["name"] not in rebuilt]
        base = {k: before.get(k) for k in ("inputs", "profile-digest", "lock-digest")}
    except (UserError, KeyError, TypeError) as exc:
        warn(f"warning: {previous / MANIFEST} is unreadable ({exc}); its other outputs are not kept")
        return {}
    kept = {}
    for o in outputs:
        try:
            kept[o["name"]] = carry_one(previous, staging, o, base)
        except (KeyError, TypeError, ValueError) as exc:
            warn(f"warning: {previous}: output '{o.get('name', '?')}' cannot be kept ({exc})")
    return kept


def carry_one(previous: Path, staging: Path, o: Mapping[str, Any],
              base: Mapping[str, Any]) -> tuple[BuiltOutput, dict[str, Any]]:
    names = [str(f["path"]) for f in o["files"]]
    if not names or any("/" in n or n in ("", ".", "..") for n in names):
        raise ValueError("its manifest entry names no file or a path outside its directory")
    missing = [n for n in names if not (previous / n).is_file()]
    if missing:
        raise ValueError(f"{missing[0]} is missing")
    changed = any(sha256_file(previous / n) != f["sha256"] for n, f in zip(names, o["files"], strict=True))
    for n in names:
        try:
            os.link(previous / n, staging / n)
        except OSError:
            shutil.copyfile(previous / n, staging / n)
    bundle = previous / f"{o['name']}.bundle"   # an A/B disk's update bundle (composer.update.bundle)
    if bundle.is_dir() and not bundle.is_symlink():
        shutil.copytree(bundle, staging / bundle.name, symlinks=True)
    record = {k: o.get(k, base[k]) for k in ("inputs", "profile-digest", "lock-digest")}
    if changed:
        record["note"] = "changed on disk since it was built"
    for log in sorted((previous / "boot").glob(f"*-{glob.escape(str(o['name']))}-*.log")):
        (staging / "boot").mkdir(exist_ok=True)
        shutil.copy2(log, staging / "boot" / log.name)
    return (BuiltOutput(name=str(o["name"]), type=str(o["type"]), files=tuple(staging / n for n in names),
                    firmware=tuple(o["firmware"]), boot=dict(o["boot"])), record)


@contextlib.contextmanager
def work_directory(prefix: str) -> Iterator[str]:
    """A temporary directory that is removed even when the failure was running out of descriptors: the
    removal is retried at exit, once the failed step's open files are closed."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    try:
        yield tmp
    finally:
        try:
            shutil.rmtree(tmp)
        except OSError:
            atexit.register(shutil.rmtree, tmp, True)


def make_products(profile: Profile, lock: Lock, lock_digest: str, sources: Sources, arch_name: str,
                  targets: Sequence[OutputJob], out: Path, *, seed: str, epoch: int,
                  say: Callable[[str], None]) -> list[BuiltOutput]:
    arch = get_arch(arch_name)
    packages = locked_packages(lock, arch_name)
    with work_directory(f"vcomp-build-{arch_name}-") as tmp:
        work = Path(tmp)
        root = work / "root"
        say(f"{arch_name}: fetching and verifying {len(packages)} locked packages")
        fetched = fetch_locked(sources, packages, arch_name)
        say(f"{arch_name}: installing into a fresh root")
        install(root, fetched, profile_digest=profile.digest, lock_digest=lock_digest, epoch=epoch)
        records = installed(root)
        # where devices reach each repository (device-url), else the URLs as written: never build paths
        save_repositories(root, [{"name": r.name, "url": r.recorded_url,
                                  "mirrors": [] if r.device_url else list(r.written_mirrors),
                                  "root": json.loads(r.root.read_bytes()),
                                  **({"priority": r.priority} if r.priority else {}),
                                  **({"packages": list(r.packages)} if r.packages else {})}
                                 for r in profile.repositories])
        atomic_write(out / CONTENTS, canonical_json(contents_of(records)) + b"\n")
        configure(root, profile, arch_name, records)
        if profile.licenses.texts:
            texts = ship_texts(root, records, DebianArchive(settings.cache_dir()), arch)
            say(f"{arch_name}: {len([t for t in texts if t.endswith('/copyright')])} licence texts shipped")
            atomic_write(out / layout.LICENSE_TEXTS, canonical_json(sorted(texts)) + b"\n")
        kernel_pkg = profile.kernel.package_name
        kernel = kernel_path(records, kernel_pkg, root, work / "boot-files" / "kernel")
        boot_files = {role: rel for r in records.values() for role, rel in r["metadata"].get("boot", {}).items()}
        cmdline = kernel_cmdline(profile, arch.console)
        sb = profile.secure_boot
        signing = SecureBootKey(key=sb.key_path, certificate=sb.certificate_path) if sb else None
        if signing is not None:
            signing.check(f"profile {profile.path.name}")
        shop = Workshop(root=root, arch=arch, work=work, epoch=epoch, seed=seed, cmdline=cmdline,
                        boot_files=boot_files, kernel=kernel, secure_boot=signing, profile=profile.name)
        for t in targets:
            say(f"{arch_name}: building {t.name} ({t.type}{', ' + '+'.join(t.firmware) if t.firmware else ''})")
        return build_products(shop, targets, out)


def kernel_cmdline(profile: Profile, console: str) -> str:
    """The built kernel command line: the console, the profile's ``kernel.cmdline``, its ``debug:`` aids."""
    from composer.debug.timeline import KERNEL_ARGS
    aids = [a for on, a in ((profile.debug.cores, "vcomp.cores=1"), (profile.debug.trace, KERNEL_ARGS)) if on]
    return " ".join(p for p in (f"console={console}", profile.kernel.cmdline or "", *aids) if p)


def build_products(shop: Workshop, targets: Sequence[OutputJob], out: Path) -> list[BuiltOutput]:
    """Each target made by its output type's builder (the registry row), in the profile's order."""
    return [OUTPUT_TYPES[t.type].builder(shop, t, out) for t in targets]


def contents_of(records: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """name -> version (text form; ``version-scheme`` beside it when not semver), size and files."""
    def scheme(r: Mapping[str, Any]) -> dict[str, str]:
        s = str(r.get("metadata", {}).get("package", {}).get("version-scheme", "semver"))
        return {} if s == "semver" else {"version-scheme": s}

    return {name: {"version": r["version"], **scheme(r), "size": r["size"],
                   "files": {f["path"]: [f.get("size", 0), f.get("sha256", f.get("target", f["type"]))]
                             for f in r["files"] if f["type"] != "dir"}}
            for name, r in sorted(records.items())}


def kernel_path(records: Mapping[str, Mapping[str, Any]], package: str, root: Path, copy: Path) -> Path:
    """A copy (at ``copy``) of the kernel package's ``boot/vmlinu*``, read through the confined layer (no
    symlink followed), so the image builders never read a host file through the root."""
    record = records.get(package)
    files = [f["path"] for f in (record or {}).get("files", []) if f["type"] == "file"
             and f["path"].startswith("boot/vmlinu")]
    if not files:
        raise UserError(f"the kernel package '{package}' is not in the lock or has no boot/vmlinuz",
                        hint="set kernel.package in the profile to a kernel package and relock")
    with Root.open(root) as tree:
        atomic_write(copy, tree.read_bytes(str(files[0])), durable=False)
    return copy


def write_records(staging: Path, profile: Profile, lock: Lock, lock_digest: str, arch: str,
                  products: Sequence[BuiltOutput], *, seed: str, tools: Mapping[str, str], epoch: int,
                  origin: Mapping[str, Mapping[str, Any]], attest: Attest = Attest()) -> dict[str, Any]:
    """manifest.json (each output with the inputs it was built from and ``stale`` when they are not this
    build's), the SPDX and CycloneDX SBOMs and the in-toto provenance."""
    outputs = [{**describe(p), **origin[p.name], "stale": origin[p.name]["inputs"] != seed
                or "note" in origin[p.name]} for p in products]
    manifest = {"format": 1, "profile": profile.name, "arch": arch, "profile-digest": profile.digest,
                "lock-digest": lock_digest, "inputs": seed, "epoch": epoch, "tools": dict(tools), "outputs": outputs,
                "boot-tests": [t.to_dict() for t in profile.boot_tests]}
    if profile.secure_boot is not None:  # the public certificate beside the outputs: vcomp boot --secure-boot
        cert = profile.secure_boot.certificate_path.read_bytes()
        atomic_write(staging / SECURE_BOOT_CERT, cert)
        manifest["secure-boot"] = {"certificate": SECURE_BOOT_CERT, "sha256": hashlib.sha256(cert).hexdigest()}
    atomic_write(staging / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n")
    packages = locked_packages(lock, arch)
    sha1 = {f.name: sha1_file(f) for p in products for f in p.files}  # SPDX requires SHA1 for files
    sbom = spdx(profile.name, arch, packages, outputs, seed=seed, epoch=epoch, sha1=sha1)
    atomic_write(staging / "sbom.spdx.json", json.dumps(sbom, indent=2, sort_keys=True).encode() + b"\n")
    cdx = cyclonedx(profile.name, arch, packages, outputs, seed=seed, epoch=epoch, sha1=sha1)
    atomic_write(staging / "sbom.cdx.json", json.dumps(cdx, indent=2, sort_keys=True).encode() + b"\n")
    prov = provenance(profile, arch, packages, outputs, seed=seed, lock_digest=lock_digest, epoch=epoch,
                      source=attest.source)
    statement = json.dumps(prov, indent=2, sort_keys=True).encode() + b"\n"
    atomic_write(staging / "provenance.intoto.json", statement)
    if attest.sign_key is not None:
        envelope = dsse.sign(statement, attest.sign_key)
        atomic_write(staging / SIGNED_PROVENANCE, json.dumps(envelope, indent=2, sort_keys=True).encode() + b"\n")
    return manifest


SECURE_BOOT_CERT = "secure-boot-db.crt"


def sha1_file(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha1").hexdigest()


def read_manifest(directory: Path) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = json.loads((directory / MANIFEST).read_bytes())
    except FileNotFoundError:
        raise UserError(f"{directory} has no {MANIFEST}: not a built image directory",
                        hint="build it first: vcomp build PROFILE") from None
    except ValueError as exc:
        raise UserError(f"{directory / MANIFEST}: corrupt ({exc})", hint="rebuild: vcomp build PROFILE") from None
    return doc
