"""Shared fixtures: real ed25519 keys and small real recipes built by the real builder."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from hypothesis import settings

from composer.package.build import Built, build
from composer.trust.keys import SigningKey, generate, load_signing_key

REPO = Path(__file__).resolve().parent.parent

def skip_unless_nobody_can_run_vcomp() -> None:
    """The EACCES tests run vcomp as ``nobody``: it must be able to enter every directory down to this checkout
    and its .venv. A checkout under a directory closed to other users (``mktemp -d`` makes mode 0700) cannot
    be run by nobody at all: that is the environment, not the fault under test, so the test is skipped, naming
    the directory."""
    import sys
    for top in (REPO, Path(sys.prefix)):
        for d in (*reversed(top.parents), top):
            mode = d.stat().st_mode
            if not mode & 0o001:
                pytest.skip(f"{d} (mode {mode & 0o777:04o}) is closed to other users, so nobody cannot run vcomp "
                            "from this checkout; clone it under a directory others may enter to run this test")


# No wall-clock assertions (issue 13): hypothesis's default 200 ms deadline per example is one, and it
# flakes on a loaded 2-core machine. Tests that set their own settings keep them.
settings.register_profile("vcomp", deadline=None)
settings.load_profile("vcomp")

# shared fixtures of the repository tests: `pristine` (a repository built once per module), `repo` (a copy)
pytest_plugins = ["tests.repo_fixtures"]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    monkeypatch.delenv("VCOMP_KEY_PASSPHRASE", raising=False)
    monkeypatch.setenv("VCOMP_NO_PLUGINS", "1")  # the suite sees the built-in rows only, whatever is installed


@pytest.fixture(scope="session")
def keydir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("keys")
    generate("dev", d)
    generate("other", d)
    return d


@pytest.fixture(scope="session")
def dev_key(keydir: Path) -> SigningKey:
    return load_signing_key(keydir / "dev.key")


def write_recipe(directory: Path, toml: str, files: dict[str, str | bytes] | None = None,
                 executable: tuple[str, ...] = ()) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "recipe.toml").write_text(textwrap.dedent(toml))
    for rel, content in (files or {}).items():
        p = directory / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
        os.chmod(p, 0o755 if rel in executable else 0o644)
    return directory


HELLO = """
    [package]
    name = "hello"
    version = "1.2.3"
    description = "Prints a greeting"
    authors = ["Test Author"]
    license = "MIT"
    type = "application"

    [dependencies]
    base-files = "12"
    libgreet = { version = "~0.3", features = ["loud"] }

    [features]
    loud = ["libgreet/loud"]

    [capabilities]
    required = ["filesystem"]
    optional = ["network"]

    [security]
    context = "hello_t"

    [[source]]
    kind = "tree"
    path = "files"

    [[source]]
    kind = "links"
    links = { "usr/bin/hi" = "hello", "etc/hello.d/abs" = "/etc/hello.conf" }

    [[source]]
    kind = "command"
    run = '''
    mkdir -p "$DESTDIR/usr/share/hello"
    printf '%s %s\\n' "$VCOMP_ARCH" "$SOURCE_DATE_EPOCH" > "$DESTDIR/usr/share/hello/built-for"
    '''
"""


def hello_recipe(base: Path) -> Path:
    return write_recipe(base / "hello", HELLO, {
        "files/usr/bin/hello": "#!/bin/sh\necho hello\n",
        "files/etc/hello.conf": "greeting=hello\n",
        "files/usr/share/doc/hello/README": "docs\n",
    }, executable=("files/usr/bin/hello",))


@pytest.fixture()
def hello_pkg(tmp_path: Path, dev_key: SigningKey) -> Built:
    return build(hello_recipe(tmp_path / "recipes"), "x86_64", dev_key, tmp_path / "out",
                 cache=tmp_path / "cache")


# Markers whose tests run only when asked for with -m MARKER (minutes each), and how to ask.
OPT_IN = {"archive": "archive test: run it with make test-archive (pytest -m archive)",
          "boot_matrix": "boot matrix test: run it with make test-boot-matrix (pytest -m boot_matrix)",
          "drivers": "aarch64/riscv64 driver boots: run them with make test-drivers (pytest -m drivers)",
          "systemd": "init: systemd boots (Debian's systemd imported): run them with make test-systemd "
                     "(pytest -m systemd)",
          "server": "server profile on aarch64/riscv64: run them with make test-server (pytest -m server)",
          "sdk": "SDK build and the examples booted: run them with make test-sdk (pytest -m sdk)",
          "debug": "gdb on a booted guest and core dumps: run them with make test-debug (pytest -m debug)",
          "verified_boot": "tampered verified-boot images: run them with make test-verified-boot "
                           "(pytest -m 'verified_boot or integration')",
          "device": "vpk on a booted server image: run it with make test-device (pytest -m device)",
          "ab_update": "A/B updates of a booted device: run it with make test-ab-update (pytest -m ab_update)"}


def pytest_configure(config: pytest.Config) -> None:
    """Forget the repository clients' trusted state once per run (the controller only, before any worker).

    The suite builds its sample repositories afresh at the same temporary paths run after run (the sample keys
    and metadata versions are fixed), and a TUF client keeps its trusted metadata when the remote has the same
    version: a client cache from an earlier run of other code would keep serving that run's index."""
    if hasattr(config, "workerinput"):
        return
    import shutil

    from composer.package.build import default_cache
    shutil.rmtree(default_cache() / "repos", ignore_errors=True)


def _asked_for(config: pytest.Config, marker: str) -> bool:
    expression = str(config.getoption("markexpr", "") or "")
    return marker in expression and f"not {marker}" not in expression


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``archive`` (the whole Debian archive, apt on it, minutes), ``boot_matrix`` (every cell of
    the boot matrix, minutes of QEMU) or ``drivers`` (boots on the emulated architectures) run only when asked
    for (``make test-archive``: ``pytest -m archive``; ``make test-boot-matrix``; ``make test-drivers``); any
    other run skips them."""
    for marker, reason in OPT_IN.items():
        if _asked_for(config, marker):
            continue
        skip = pytest.mark.skip(reason=reason)
        for item in items:
            if item.get_closest_marker(marker) is not None:
                item.add_marker(skip)
