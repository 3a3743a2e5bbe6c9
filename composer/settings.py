"""Every environment input of vcomp, one documented row each.

No other module reads ``os.environ``: they ask a row here (``settings.OFFLINE.get()``). Only
``composer/run.py`` still touches the environment, to hand it on to child processes
(``tests/unit/test_settings.py`` checks both). A row names the variable, what it means, its default (what
applies when it is unset or empty), what it accepts and the error line when it is malformed; its parser
turns the text into a typed value or raises that :class:`~composer.errors.UserError`.

``Setting.get`` reads the environment at the time of the call (the CLI and tests change it), so nothing is
cached. A *family* row is one variable per field of a dataclass that lives elsewhere
(``VCOMP_LIMIT_<FIELD>`` for :class:`composer.limits.Limits`): ``get("MAX_DEPTH")`` reads one of them.
A private key named ``KEYFILE:VAR`` (or ``key generate --passphrase-env VAR``) has its passphrase in ``VAR``;
:func:`passphrase` reads it (docs/keys.md).

The table in docs/architecture/settings.md is generated from the rows by :func:`markdown_table`
(regenerate it with ``.venv/bin/python -m tests.unit.test_settings``; a test keeps it current).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from composer.errors import UserError

T_co = TypeVar("T_co", covariant=True)
Environ = Mapping[str, str]
TRUE_WORDS = ("1", "true", "yes")


@dataclass(frozen=True, slots=True, kw_only=True)
class Setting(Generic[T_co]):
    """One environment variable (or one family of them) that vcomp reads."""

    name: str                          # the variable; a family's prefix (VCOMP_LIMIT_)
    meaning: str
    default: str                       # what applies when it is unset or empty
    accepts: str                       # what the parser takes, in words
    parse: Callable[[str, str], T_co]  # (variable, its text, "" when unset) -> the value, or a UserError
    malformed: str = ""                # the error line of a malformed value ("" = every text is accepted)
    family: str = ""                   # a family: which names follow the prefix

    def get(self, suffix: str = "", *, environ: Environ | None = None) -> T_co:
        """The value now (``suffix``: the field of a family, e.g. ``MAX_DEPTH``)."""
        variable = self.name + suffix
        return self.parse(variable, read(variable, environ))

    @property
    def shown_name(self) -> str:
        return f"{self.name}<FIELD>" if self.family else self.name


def read(variable: str, environ: Environ | None = None) -> str:
    """The raw text of ``variable`` ("" when unset): the one place that reads the process environment."""
    env = os.environ if environ is None else environ
    return env.get(variable, "")


@contextlib.contextmanager
def overriding(setting: Setting[object], text: str | None) -> Iterator[None]:
    """``setting`` set to ``text`` for this process and its children while the block runs (None: unchanged);
    the one place that writes the environment (``vcomp pkg rebuild-check`` builds at the published epoch)."""
    old = os.environ.get(setting.name)
    if text is not None:
        os.environ[setting.name] = text
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(setting.name, None)
        else:
            os.environ[setting.name] = old


# ----------------------------------------------------------------- parsers

def _text(_variable: str, raw: str) -> str:
    return raw


def _text_or(default: str) -> Callable[[str, str], str]:
    def parse(_variable: str, raw: str) -> str:
        return raw or default
    return parse


def _flag(_variable: str, raw: str) -> bool:
    return raw in TRUE_WORDS


def _exactly_one(_variable: str, raw: str) -> bool:
    return raw == "1"


def _path(_variable: str, raw: str) -> Path | None:
    return Path(raw) if raw else None


def _epoch(variable: str, raw: str) -> int | None:
    if raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise UserError(f"{variable}='{raw}' is not an integer",
                        hint=f"set it to seconds since 1970, e.g. {variable}=1700000000") from None
    if value < 0:
        raise UserError(f"{variable}={value} is negative", hint="use a positive number of seconds")
    return value


def _seconds(variable: str, raw: str) -> float | None:
    text = raw.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):  # also refuses nan
        raise UserError(f"{variable}='{text}' is not a number of seconds",
                        hint=f"set it to seconds to wait for a lock (e.g. {variable}=30) or unset it to wait")
    return value


def _positive_int(variable: str, raw: str) -> int | None:
    if raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value <= 0:
        raise UserError(f"{variable}='{raw}' is not a positive integer",
                        hint="unset it to use the default, or give a positive number")
    return value


def _positive_number(variable: str, raw: str) -> float | None:
    if raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise UserError(f"{variable}='{raw}' is not a positive number",
                        hint="unset it to use the default, or give a positive number")
    return value


def _instant(variable: str, raw: str) -> dt.datetime | None:
    if raw == "":
        return None
    try:
        return dt.datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(dt.UTC)
    except ValueError:
        raise UserError(f"{variable}='{raw}' is not an ISO 8601 time",
                        hint=f"write e.g. {variable}=2026-01-01T00:00:00Z, or unset it to use the clock") from None


def _index_mode(variable: str, raw: str) -> str:
    if raw not in ("", "auto", "sparse", "whole"):
        raise UserError(f"{variable}='{raw}' is not one of auto, sparse, whole",
                        hint=f"unset {variable} (auto: the sparse index when the repositories publish it)")
    return raw or "auto"


def _crash_point(_variable: str, raw: str) -> int:
    return int(raw) if raw.isdigit() else 0


# ----------------------------------------------------------------- the rows

CACHE = Setting(
    name="VCOMP_CACHE", parse=_path,
    meaning="the cache directory (packages, verified repository metadata, images, the Debian pool)",
    default="$XDG_CACHE_HOME/vcomp", accepts="a directory")
XDG_CACHE_HOME = Setting(
    name="XDG_CACHE_HOME", parse=_path,
    meaning="the user's cache base directory (XDG), when VCOMP_CACHE is unset",
    default="~/.cache", accepts="a directory")
CACHE_MAX = Setting(
    name="VCOMP_CACHE_MAX", parse=_text_or("20G"),
    meaning="the size the cache is trimmed to after a build (least recently used entries go first)",
    default="20G", accepts="a size: 4096, 500M, 2G, 1.5GiB (read by composer/caches/policy.parse_size)",
    malformed="VCOMP_CACHE_MAX: 'TEXT' is not a size")
SOURCE_DATE_EPOCH = Setting(
    name="SOURCE_DATE_EPOCH", parse=_epoch,
    meaning="the time stamped on every file of packages and images (reproducible builds)",
    default="the recipe's source-date-epoch, else 1700000000", accepts="whole seconds since 1970, >= 0",
    malformed="SOURCE_DATE_EPOCH='TEXT' is not an integer / SOURCE_DATE_EPOCH=N is negative")
KVM = Setting(
    name="VCOMP_KVM", parse=_exactly_one,
    meaning="boot tests use KVM (when /dev/kvm opens read-write)",
    default="off (QEMU emulates)", accepts="1 turns it on; anything else is off")
NO_WAIT = Setting(
    name="VCOMP_NO_WAIT", parse=_flag,
    meaning="fail at once when another vcomp process holds a lock (like --no-wait)",
    default="wait", accepts="1, true or yes turn it on")
LOCK_TIMEOUT = Setting(
    name="VCOMP_LOCK_TIMEOUT", parse=_seconds,
    meaning="seconds to wait for a lock before giving up",
    default="wait for ever", accepts="seconds >= 0 (a decimal number)",
    malformed="VCOMP_LOCK_TIMEOUT='TEXT' is not a number of seconds")
OFFLINE = Setting(
    name="VCOMP_OFFLINE", parse=_flag,
    meaning="never use the network: answer from the verified cache (like --offline)",
    default="online", accepts="1, true or yes turn it on")
INDEX = Setting(
    name="VCOMP_INDEX", parse=_index_mode,
    meaning="which index 'lock' resolves with: the sparse per-name files (docs/repo-sparse.md) or the whole index",
    default="auto (sparse when every repository publishes it and the whole indexes total 2 MiB or more, and "
            "whatever the setting while a whole index is behind its sparse files)",
    accepts="auto, sparse or whole",
    malformed="VCOMP_INDEX='TEXT' is not one of auto, sparse, whole")
REPO_NOW = Setting(
    name="VCOMP_REPO_NOW", parse=_instant,
    meaning="the time repository metadata expiry dates count from (tests, reproducible roots)",
    default="the clock", accepts="an ISO 8601 time (Z for UTC)",
    malformed="VCOMP_REPO_NOW='TEXT' is not an ISO 8601 time")
SHARED_CACHE = Setting(
    name="VCOMP_SHARED_CACHE", parse=_text,
    meaning="a shared cache of built image outputs that build, test and reconcile read before building and write "
            "after (docs/farm.md, 'Image builds')",
    default="(none)", accepts="a directory, an http(s):// URL (GET; PUT to write) or s3://BUCKET/PREFIX")
SHARED_CACHE_KEY = Setting(
    name="VCOMP_SHARED_CACHE_KEY", parse=_text,
    meaning="the key of VCOMP_SHARED_CACHE's entries: a private key signs what this machine builds and verifies "
            "what it reads; a .pub only verifies (read only)",
    default="(none; needed with VCOMP_SHARED_CACHE)", accepts="KEYFILE[:VAR] or a .pub file")
DEBIAN_MIRROR = Setting(
    name="VCOMP_DEBIAN_MIRROR", parse=_text_or("http://deb.debian.org/debian"),
    meaning="the Debian archive that Debian sources download from",
    default="http://deb.debian.org/debian", accepts="an apt URL")
DEBIAN_SECURITY_MIRROR = Setting(
    name="VCOMP_DEBIAN_SECURITY_MIRROR", parse=_text_or("http://deb.debian.org/debian-security"),
    meaning="the Debian security archive that Debian sources download from",
    default="http://deb.debian.org/debian-security", accepts="an apt URL")
KEY_PASSPHRASE = Setting(
    name="VCOMP_KEY_PASSPHRASE", parse=_text,
    meaning="the passphrase of every encrypted private key named without its own variable (KEYFILE:VAR reads "
            "VAR instead; without either, vcomp asks on a terminal; see docs/keys.md)",
    default="none (the key is not encrypted)", accepts="any text")
LIMIT = Setting(
    name="VCOMP_LIMIT_", parse=_positive_int, family="a field of composer.limits.Limits, in upper case",
    meaning="a limit on what vcomp reads (document size and depth, package members and sizes)",
    default="composer/limits.py", accepts="a positive integer",
    malformed="VCOMP_LIMIT_MAX_DEPTH='TEXT' is not a positive integer")
HTTP = Setting(
    name="VCOMP_HTTP_", parse=_positive_number,
    family="a field of composer.repo.deadlines.TransportLimits, in upper case",
    meaning="a deadline or rate of one repository download (see docs/security/transport.md)",
    default="composer/repo/deadlines.py", accepts="a positive number",
    malformed="VCOMP_HTTP_MIN_RATE='TEXT' is not a positive number")
NO_COLOR = Setting(
    name="NO_COLOR", parse=lambda _variable, raw: raw != "",
    meaning="no colour on a terminal (no-color.org); --color=always still colours",
    default="colour on a terminal (--color=auto)", accepts="any non-empty value turns colour off")
CONFIG = Setting(
    name="VCOMP_CONFIG", parse=_path,
    meaning="the project configuration (vcomp.toml) to use, like --config (docs/project-config.md)",
    default="the vcomp.toml of the working directory or its nearest parent (not above the git work tree)",
    accepts="a file")
NO_PLUGINS = Setting(
    name="VCOMP_NO_PLUGINS", parse=_flag,
    meaning="load no plugin (entry points vcomp.outputs, .sources, .transports, .policies; like --no-plugins; "
            "docs/plugins.md)",
    default="plugins load", accepts="1, true or yes turn it on")
SHELL = Setting(
    name="SHELL", parse=_text_or("/bin/sh"),
    meaning="the shell `vcomp sdk shell` opens with the SDK's environment",
    default="/bin/sh", accepts="a program")
TEST_CRASH_AT = Setting(
    name="VCOMP_TEST_CRASH_AT", parse=_crash_point,
    meaning="test hook: a transaction exits (status 137) at its Nth crash point, a kill -9 stand-in",
    default="0 (never)", accepts="a whole number; anything else is 0")

ELEMENTS_PATH = Setting(
    name="ELEMENTS_PATH", parse=_text,
    meaning="further diskimage-builder element directories, colon-separated, as DIB reads it (docs/dib.md)",
    default="(none)", accepts="directories separated by ':'")

ROWS: tuple[Setting[object], ...] = (
    CACHE, XDG_CACHE_HOME, CACHE_MAX, SOURCE_DATE_EPOCH, KVM, NO_WAIT, LOCK_TIMEOUT, OFFLINE, INDEX, REPO_NOW,
    SHARED_CACHE, SHARED_CACHE_KEY, DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR, KEY_PASSPHRASE, LIMIT, HTTP, NO_COLOR,
    CONFIG, NO_PLUGINS, SHELL,
    TEST_CRASH_AT, ELEMENTS_PATH,
)


# ----------------------------------------------------------------- derived values

_PROJECT_CACHE: dict[str, Path] = {}   # the cache of the project's vcomp.toml, set by the CLI (use_project_cache)


def use_project_cache(path: Path | None) -> None:
    """The cache directory a project configuration names (``[project] cache``; None: none): it applies when
    VCOMP_CACHE is unset (the variable is the user's explicit choice and wins)."""
    _PROJECT_CACHE.clear()
    if path is not None:
        _PROJECT_CACHE["cache"] = path


_PROGRAM_CACHE: dict[str, Path] = {}   # the cache a program (vpk: /var/cache/vpk) uses instead of the user's


def use_program_cache(path: Path | None) -> None:
    """The cache of a program that is not run by a user at a desk (``vpk`` on a device: /var/cache/vpk): it
    applies when neither VCOMP_CACHE nor a project's cache is given, instead of the user's XDG cache."""
    _PROGRAM_CACHE.clear()
    if path is not None:
        _PROGRAM_CACHE["cache"] = path


def cache_dir() -> Path:
    """``$VCOMP_CACHE``, else the project's cache (vcomp.toml), else the program's (vpk: /var/cache/vpk), else
    ``$XDG_CACHE_HOME/vcomp``, else ``~/.cache/vcomp``."""
    explicit = CACHE.get()
    if explicit is not None:
        return explicit
    for chosen in (_PROJECT_CACHE, _PROGRAM_CACHE):
        if "cache" in chosen:
            return chosen["cache"]
    base = XDG_CACHE_HOME.get()
    return (base if base is not None else Path.home() / ".cache") / "vcomp"


def passphrase(variable: str = "") -> str | None:
    """The passphrase in ``variable`` (default: VCOMP_KEY_PASSPHRASE); None when unset or empty."""
    return read(variable or KEY_PASSPHRASE.name) or None


def markdown_table() -> str:
    """The rows as the Markdown table of docs/architecture/settings.md."""
    lines = ["| variable | meaning | default | accepts | error line when malformed |",
             "|---|---|---|---|---|"]
    for s in ROWS:
        name = f"`{s.shown_name}` ({s.family})" if s.family else f"`{s.shown_name}`"
        cells = (name, s.meaning, s.default, s.accepts, f"`{s.malformed}`" if s.malformed else "-")
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
