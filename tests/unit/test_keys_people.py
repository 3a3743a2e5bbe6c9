"""Keys for people (issue 15, item 8): per-key passphrases, the root signing ceremony, relative key paths."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest

from composer.cli.main import main
from composer.errors import UserError, VerificationError
from composer.repo.client import RepositoryClient
from composer.repo.store import RepoStore, config_key_path
from composer.trust import keys as keymod
from composer.trust.keys import generate, load_key_spec, load_signing_key, parse_key_spec

PASSES = {"r1": "one", "r2": "two", "r3": "three", "r4": "four"}


@pytest.fixture()
def keydir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Root keys r1..r4, each encrypted with its holder's own passphrase (in $R1_PASS ...); online keys plain."""
    d = tmp_path / "proj" / "keys"
    for name, phrase in PASSES.items():
        generate(name, d, passphrase=phrase)
        monkeypatch.setenv(f"{name.upper()}_PASS", phrase)
    for name in ("targets", "index", "snapshot", "timestamp"):
        generate(name, d)
    monkeypatch.delenv("VCOMP_KEY_PASSPHRASE", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    return d


def spec(keydir: Path, name: str) -> str:
    return f"{keydir / name}.key:{name.upper()}_PASS"


def init_repo(keydir: Path, repo: Path, roots: tuple[str, ...] = ("r1", "r2", "r3"), threshold: int = 2) -> None:
    args = ["repo", "init", str(repo), "--root-threshold", str(threshold),
            "--targets-key", str(keydir / "targets.key")]
    for r in roots:
        args += ["--root-key", spec(keydir, r)]
    for role in ("index", "snapshot", "timestamp"):
        args += [f"--{role}-key", str(keydir / f"{role}.key")]
    assert main(args) == 0


# ---------------------------------------------------------------- per-key passphrases

def test_each_key_has_its_own_passphrase_variable(keydir: Path) -> None:
    a, b = load_key_spec(spec(keydir, "r1")), load_key_spec(spec(keydir, "r2"))
    assert a.keyid != b.keyid
    with pytest.raises(UserError, match=r"wrong passphrase \(from \$R2_PASS\)"):
        load_key_spec(f"{keydir / 'r1.key'}:R2_PASS")
    with pytest.raises(UserError, match=r"encrypted and \$NOPE_PASS is not set"):
        load_key_spec(f"{keydir / 'r1.key'}:NOPE_PASS")


def test_no_terminal_means_one_error_line_naming_the_key_and_the_fix(keydir: Path) -> None:
    with pytest.raises(UserError) as err:
        load_signing_key(keydir / "r1.key")
    assert str(keydir / "r1.key") in err.value.message and "not a terminal" in err.value.message
    assert err.value.hint is not None and ":VAR" in err.value.hint and "\n" not in err.value.message


def test_the_prompt_asks_per_key_on_a_terminal(keydir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def fake_getpass(prompt: str) -> str:
        asked.append(prompt)
        return PASSES[Path(prompt.split()[-1].rstrip(":")).stem]

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr(keymod.getpass, "getpass", fake_getpass)
    assert load_signing_key(keydir / "r3.key").keyid == load_key_spec(spec(keydir, "r3")).keyid
    assert asked == [f"passphrase for {keydir / 'r3.key'}: "]
    assert load_signing_key(keydir / "index.key", ask=lambda p: pytest.fail("a plain key needs no passphrase"))


def test_shared_variable_still_works_and_does_not_break_plain_keys(keydir: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCOMP_KEY_PASSPHRASE", "one")
    assert load_signing_key(keydir / "r1.key").keyid
    assert load_signing_key(keydir / "index.key").keyid   # unencrypted: the shared passphrase is not used


def test_key_spec_parsing(tmp_path: Path) -> None:
    assert parse_key_spec("a.key:ALICE_PASS") == keymod.KeySpec(path=Path("a.key"), passphrase_env="ALICE_PASS")
    assert parse_key_spec("a.key").passphrase_env is None
    assert parse_key_spec("keys/a.key:X", base=tmp_path).path == tmp_path / "keys/a.key"
    odd = tmp_path / "odd:NAME"
    odd.write_text("")
    assert parse_key_spec(str(odd)) == keymod.KeySpec(path=odd)   # an existing file wins


def test_threshold_root_of_two_holders_in_one_command(keydir: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "proj" / "repo"
    init_repo(keydir, repo)
    generate("ts2", keydir)
    assert main(["repo", "rotate", str(repo), "--role", "timestamp", "--add-key", str(keydir / "ts2.key"),
                 "--remove-key", str(keydir / "timestamp.pub"),
                 "--root-key", spec(keydir, "r1"), "--root-key", spec(keydir, "r3")]) == 0
    assert "root v2" in capsys.readouterr().out
    assert main(["repo", "rotate", str(repo), "--role", "snapshot", "--add-key", str(keydir / "ts2.key"),
                 "--root-key", spec(keydir, "r1"), "--root-key", str(keydir / "r2.key")]) == 1
    err = capsys.readouterr().err
    assert f"{keydir / 'r2.key'}: the private key is encrypted" in err and "hint:" in err


# ---------------------------------------------------------------- the root signing ceremony

def test_two_of_three_root_rotation_signed_separately_merged_published_and_followed(
        keydir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "proj" / "repo"
    init_repo(keydir, repo)
    pinned = (repo / "metadata" / "1.root.json").read_bytes()
    RepositoryClient(str(repo), pinned, tmp_path / "client").refresh()
    # the lead stages: r1 leaves, r4 joins, still 2 of 3
    assert main(["repo", "rotate", str(repo), "--role", "root", "--stage", "--add-key", str(keydir / "r4.pub"),
                 "--remove-key", str(keydir / "r1.pub")]) == 0
    assert "0 of 2 current root signatures, 0 of 2 new" in capsys.readouterr().out
    staged = repo / "staged-root.json"
    # two holders sign their own copies on their own machines (a clone of the repository each, no online keys)
    copies = {who: tmp_path / f"{who}-copy.json" for who in ("r2", "r3")}
    for who, copy in copies.items():
        clone = tmp_path / f"machine-{who}" / "repo"
        shutil.copytree(repo, clone)
        shutil.copy(staged, copy)
        assert main(["repo", "sign-root", str(clone), "--key", spec(keydir, who), "--staged", str(copy),
                     "--no-publish"]) == 0
        assert "1 of 2 current root signatures, 1 of 2 new" in capsys.readouterr().out
        assert not (clone / "metadata" / "2.root.json").exists()
    assert not (repo / "metadata" / "2.root.json").exists()
    # a key that is in neither root is refused; a tampered copy is refused
    generate("stranger", keydir)
    assert main(["repo", "sign-root", str(repo), "--key", str(keydir / "stranger.key")]) == 1
    assert "is not a root key" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    doc = json.loads(copies["r2"].read_bytes())
    doc["signed"]["expires"] = "2099-01-01T00:00:00Z"
    bad.write_text(json.dumps(doc))
    with pytest.raises(UserError, match="a different staged root"):
        from composer.repo.ceremony import sign_root
        sign_root(RepoStore(repo), merge=[bad])
    # the lead merges: both thresholds met, so it is published
    assert main(["repo", "sign-root", str(repo), "--merge", str(copies["r2"]), "--merge", str(copies["r3"])]) == 0
    assert "2 of 2 current root signatures, 2 of 2 new root signatures; published" in capsys.readouterr().out
    assert not staged.exists()
    published = json.loads((repo / "metadata" / "2.root.json").read_bytes())
    assert len(published["signatures"]) == 2
    assert (repo / "metadata" / "root.json").read_bytes() == (repo / "metadata" / "2.root.json").read_bytes()
    # a client pinned on root v1 updates through it
    client = RepositoryClient(str(repo), pinned, tmp_path / "client")
    client.refresh()
    assert json.loads((client.metadata_dir / "root.json").read_bytes())["signed"]["version"] == 2
    fresh = RepositoryClient(str(repo), pinned, tmp_path / "client2")
    assert fresh.search("anything", "x86_64") == []


def test_forged_merge_signature_and_stale_staged_root(keydir: Path, tmp_path: Path) -> None:
    from composer.repo.ceremony import sign_root, stage_root
    from composer.trust.keys import load_public_key
    repo = tmp_path / "proj" / "repo"
    init_repo(keydir, repo)
    status = stage_root(RepoStore(repo), add=[load_public_key(keydir / "r4.pub")], remove=[], threshold=None)
    assert not status.complete
    copy = tmp_path / "copy.json"
    shutil.copy(repo / "staged-root.json", copy)
    sign_root(RepoStore(repo), keys=[load_key_spec(spec(keydir, "r2"))], staged=copy, publish=False)
    doc = json.loads(copy.read_bytes())
    sig = doc["signatures"][0]
    sig["sig"] = ("00" if sig["sig"][:2] != "00" else "11") + sig["sig"][2:]
    copy.write_text(json.dumps(doc))
    with pytest.raises(VerificationError, match="not a valid root signature"):
        sign_root(RepoStore(repo), merge=[copy])
    with pytest.raises(UserError, match="a staged root already exists"):
        stage_root(RepoStore(repo), add=[], remove=[], threshold=None)
    # publish a different root v2 meanwhile: the staged one is stale
    assert main(["repo", "rotate", str(repo), "--role", "root", "--threshold", "1",
                 "--root-key", spec(keydir, "r1"), "--root-key", spec(keydir, "r2")]) == 0
    with pytest.raises(UserError, match="stale"):
        sign_root(RepoStore(repo), keys=[load_key_spec(spec(keydir, "r3"))])


def test_stage_is_for_root_only(keydir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "proj" / "repo"
    init_repo(keydir, repo)
    assert main(["repo", "rotate", str(repo), "--role", "timestamp", "--stage"]) == 1
    assert "--role root" in capsys.readouterr().err


# ---------------------------------------------------------------- repo.toml key paths

def test_key_paths_are_written_relative_and_a_moved_clone_still_publishes(keydir: Path, tmp_path: Path) -> None:
    repo = tmp_path / "proj" / "repo"
    init_repo(keydir, repo)
    listed = tomllib.loads((repo / "repo.toml").read_text())["keys"]
    assert listed == {r: [f"../keys/{r}.key"] for r in ("index", "snapshot", "timestamp")}
    moved = tmp_path / "elsewhere" / "clone"
    shutil.copytree(tmp_path / "proj", moved)
    shutil.rmtree(tmp_path / "proj")
    assert main(["repo", "publish", str(moved / "repo")]) == 0
    assert main(["repo", "refresh", str(moved / "repo")]) == 0


def test_config_key_path_inside_beside_and_outside(tmp_path: Path) -> None:
    repo = tmp_path / "a" / "repo"
    assert config_key_path(repo, str(repo / "keys" / "i.key")) == "keys/i.key"
    assert config_key_path(repo, str(tmp_path / "a" / "k" / "i.key:IDX")) == "../k/i.key:IDX"
    assert config_key_path(repo, str(tmp_path / "b" / "i.key")) == str(tmp_path / "b" / "i.key")


def test_absolute_paths_and_passphrase_variables_in_repo_toml_are_read(keydir: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "proj" / "repo"
    init_repo(keydir, repo)
    generate("enc-index", keydir, passphrase="idx")
    monkeypatch.setenv("IDX_PASS", "idx")
    config = (repo / "repo.toml").read_text()
    (repo / "repo.toml").write_text(config.replace('"../keys/snapshot.key"', f'"{keydir / "snapshot.key"}"'))
    assert main(["repo", "publish", str(repo)]) == 0
    assert main(["repo", "rotate", str(repo), "--role", "index", "--add-key", f"{keydir / 'enc-index.key'}:IDX_PASS",
                 "--remove-key", str(keydir / "index.pub"), "--targets-key", str(keydir / "targets.key")]) == 0
    assert tomllib.loads((repo / "repo.toml").read_text())["keys"]["index"] == ["../keys/enc-index.key:IDX_PASS"]
    assert main(["repo", "publish", str(repo)]) == 0
