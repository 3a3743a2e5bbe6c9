"""Kill sweeps of the repository side and of `vcomp lock` (bench/reliability.py --only repo).

The world is the real signed repository of ``tests/repo_fixtures.py``. What is compared is what a
client sees, read by the real client with a fresh cache after the follow-up command: the packages of
the index with their digests, each one fetched and verified, plus two repository invariants
(the state (``state.db``) agrees with the signed developer roles; no temporary file is left). The raw metadata
tree is not compared: a retried publish legitimately signs new versions with new expiry dates.

* ``repo init``    killed, no follow-up: there is no repository (``repo.toml`` is written last, so
                   init can simply run again, and removes the leftovers) or a complete one.
* ``repo add``     ``repo add P && repo publish`` killed; follow-up ``repo publish`` (the user's retry):
                   the package is published, or it is not, and the repository is consistent.
* ``repo publish`` an added package is published; follow-up ``repo refresh`` (the timer): a client
                   sees the old or the new repository, never a mix.
* ``repo refresh`` the timestamp is re-signed; follow-up none: a client can always refresh.
* ``lock``         ``vcomp lock`` of a profile with a cold package cache: the lock file is absent or
                   complete, never half-written.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
from pathlib import Path

from composer.errors import ComposerError
from composer.repo.client import RepositoryClient
from composer.repo.guard import reconcile_state
from composer.repo.store import RepoStore
from tests.reliability.killsweep import VCOMP, Run, Scenario
from tests.repo_fixtures import ARCH, build_package, build_pristine

_views = itertools.count()


def repo_view(repo: Path, root: bytes, scratch: Path) -> str:
    """What a client sees of ``repo`` and whether the repository is consistent, as one string."""
    cache = scratch / f"view-{next(_views)}"
    try:
        client = RepositoryClient(repo.as_uri(), root, cache, offline=False, fallback=False)
        client.refresh()
        entries = client.index(ARCH)
        for entry in entries:
            client.fetch(entry)
        store = RepoStore(repo)
        state = store.read_state()
        return json.dumps({
            "packages": sorted((e.path, e.sha256) for e in entries),
            "state-agrees-with-roles": reconcile_state(store, state) == state,
            "temporaries": sorted(str(p.relative_to(repo)) for p in repo.rglob(".*.tmp")),
        }, sort_keys=True)
    except (ComposerError, OSError) as exc:
        return f"a client cannot use the repository: {exc}"
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def _world(work: Path) -> tuple[Path, Path, Path, bytes]:
    """(repository, developer key, a new package to add, pinned root) under ``work``."""
    pristine = build_pristine(work / "base")
    pkg = build_package(work / "extra", ("libkill", "1.0.0", ARCH, "alice"), pristine.keys)
    root = (pristine.dir / "metadata" / "1.root.json").read_bytes()
    return pristine.dir, pristine.keys.path("alice"), pkg, root


def _shell(*commands: list[str]) -> list[str]:
    import shlex
    return ["sh", "-c", " && ".join(shlex.join(c) for c in commands)]


def _add(work: Path) -> Run:
    repo, key, pkg, root = _world(work)
    add = [*VCOMP, "repo", "add", str(repo), str(pkg), "--key", str(key)]
    publish = [*VCOMP, "repo", "publish", str(repo)]
    return Run(argv=_shell(add, publish), follow_up=[publish],
               observe=lambda: repo_view(repo, root, work.parent / "views"))


def _publish(work: Path) -> Run:
    repo, key, pkg, root = _world(work)
    from composer.repo import edit
    from composer.trust.keys import load_signing_key
    edit.add(RepoStore(repo), [pkg], [load_signing_key(key)])
    return Run(argv=[*VCOMP, "repo", "publish", str(repo)], follow_up=[[*VCOMP, "repo", "refresh", str(repo)]],
               observe=lambda: repo_view(repo, root, work.parent / "views"))


def _refresh(work: Path) -> Run:
    repo, _, _, root = _world(work)
    return Run(argv=[*VCOMP, "repo", "refresh", str(repo)],
               observe=lambda: repo_view(repo, root, work.parent / "views"))


def _init(work: Path) -> Run:
    pristine = build_pristine(work / "base")
    repo = work / "new-repo"
    argv = [*VCOMP, "repo", "init", str(repo), "--root-key", str(pristine.keys.path("root1")), "--arch", ARCH]
    for role in ("targets", "index", "snapshot", "timestamp"):
        argv += [f"--{role}-key", str(pristine.keys.path(role))]

    def observe() -> str:
        try:
            RepoStore(repo)
        except ComposerError:
            return "no repository"    # no repo.toml: what a killed init left is not a repository yet
        return repo_view(repo, (repo / "metadata" / "1.root.json").read_bytes(), work.parent / "views")
    return Run(argv=argv, observe=observe)


PROFILE = """name: p
architectures: [x86_64]
repositories:
  - name: main
    url: {url}
    root: root.json
packages: [hello, libfoo]
outputs:
  - type: rootfs
"""


def _lock(work: Path) -> Run:
    repo, _, _, root = _world(work)
    profiles = work / "profiles"
    profiles.mkdir()
    (profiles / "root.json").write_bytes(root)
    (profiles / "p.yaml").write_text(PROFILE.format(url=repo))
    lock = profiles / "p.lock"

    def observe() -> str:
        with contextlib.suppress(FileNotFoundError):
            data = lock.read_bytes()
            try:
                json.loads(data)
            except ValueError:
                return f"half-written lock ({len(data)} bytes)"
            return data.decode()
        return "absent"
    return Run(argv=[*VCOMP, "lock", "p.yaml"], cwd=profiles, env={"VCOMP_CACHE": str(work / "cache")},
               observe=observe)


SCENARIOS = [
    Scenario(name="repo init", prepare=_init),
    Scenario(name="repo add", prepare=_add),
    Scenario(name="repo publish", prepare=_publish),
    Scenario(name="repo refresh", prepare=_refresh),
    Scenario(name="lock (repo)", prepare=_lock),
]
