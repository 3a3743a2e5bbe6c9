"""Empty and odd repository indexes never crash: a normal empty result or one clear line.

An index with no packages (a new repository, or an architecture nothing is published for) used to end
in ``internal error: ValueError`` from the pool (``zip()`` of the entry slices).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.errors import UserError
from composer.repo import edit
from composer.repo.store import RepoStore
from composer.solve.policy import RepoPolicy
from composer.solve.pool import IndexData, SolvIndex
from composer.solve.resolve import Request, Resolver
from tests.repo_fixtures import Pristine, build_pristine


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    return build_pristine(tmp_path_factory.mktemp("pristine"))


def test_empty_index_texts_is_empty() -> None:
    raw = b'{"arch":"aarch64","format":1,"packages":[]}'
    assert IndexData(raw, []).texts() == []


@pytest.mark.parametrize("cached", [False, True])
def test_an_architecture_without_packages_resolves_to_a_clear_line(pristine: Pristine, tmp_path: Path,
                                                                   cached: bool) -> None:
    repo = pristine.copy(tmp_path)
    toml = repo.dir / "repo.toml"
    toml.write_text(toml.read_text().replace('architectures = [\n    "x86_64",\n]',
                                             'architectures = [\n    "x86_64",\n    "aarch64",\n]'))
    assert "aarch64" in RepoStore(repo.dir).config.architectures
    edit.publish(repo.store)
    client = repo.client()
    client.refresh()
    assert client.index("aarch64") == [] or all(e.arch == "noarch" for e in client.index("aarch64"))

    def load() -> IndexData:
        return IndexData(*client.index_documents("aarch64"))

    pools = tmp_path / "pools" if cached else None
    for _ in range(2 if cached else 1):   # built, then loaded from the pool cache
        index = SolvIndex.cached(pools, "aarch64", [("main", client.index_digest("aarch64"), load)])
        with pytest.raises(UserError, match="hello"):
            Resolver(index, RepoPolicy.of([])).solve([Request(name="hello")])


def test_a_repository_with_nothing_published_gives_empty_indexes(pristine: Pristine, tmp_path: Path) -> None:
    keys = pristine.keys
    online = {role: [keys.by_name[role]] for role in ("index", "snapshot", "timestamp")}
    directory = tmp_path / "empty"
    edit.init(directory, root_keys=[keys.root1], root_threshold=1, targets_keys=[keys.targets], online=online,
              online_paths={role: [str(keys.path(role))] for role in online}, architectures=["x86_64"])
    edit.publish(RepoStore(directory))
    from composer.repo.client import RepositoryClient
    client = RepositoryClient(directory.as_uri(), (directory / "metadata" / "1.root.json").read_bytes(),
                              tmp_path / "cache")
    assert client.index("x86_64") == []
    assert client.search("anything", "x86_64") == []
    index = SolvIndex.cached(None, "x86_64", [("main", client.index_digest("x86_64"),
                                                lambda: IndexData(*client.index_documents("x86_64")))])
    with pytest.raises(UserError, match="hello"):
        Resolver(index, RepoPolicy.of([])).solve([Request(name="hello")])
