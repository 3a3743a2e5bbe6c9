"""Debian maintainer scripts read as text (never run) into what they would do: the script half of
:mod:`composer.package.debactions`, which describes the rules.

:func:`read_script` walks the logical lines of ``preinst``/``postinst``, skipping what a fresh install does not
run (other ``case "$1"`` branches, upgrade-only ``if`` blocks) and debhelper sections whose generator
(:data:`DH`) changes nothing in an image; every other simple command goes through :data:`COMMANDS` or is
recorded as untranslated.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_ENTRY = 200             # characters of one untranslated entry
DEFAULT_HOME = "/nonexistent"
NOLOGIN = "/usr/sbin/nologin"


@dataclass(slots=True)
class Collected:
    """What a translation collects (mutable while it runs, frozen into a Translation at the end)."""

    users: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    members: list[dict[str, Any]] = field(default_factory=list)
    tmpfiles: list[dict[str, Any]] = field(default_factory=list)
    alternatives: list[dict[str, Any]] = field(default_factory=list)
    ldconfig: bool = False
    firstboot: set[str] = field(default_factory=set)
    generate: set[str] = field(default_factory=set)
    enable: list[str] = field(default_factory=list)
    untranslated: list[str] = field(default_factory=list)
    debconf: list[str] = field(default_factory=list)
    staged: dict[str, str] = field(default_factory=dict)   # $VAR -> the literal file `cp SRC $VAR` copied

    def skip(self, where: str, text: str) -> None:
        entry = f"{where}: {' '.join(text.split())}"
        entry = entry if len(entry) <= MAX_ENTRY else entry[:MAX_ENTRY - 3] + "..."
        if entry not in self.untranslated:
            self.untranslated.append(entry)


def words_of(line: str) -> list[str] | None:
    try:
        return shlex.split(line, comments=True)
    except ValueError:
        return None



# ---------------------------------------------------------------- maintainer scripts

def _options(args: Sequence[str], with_value: frozenset[str]) -> tuple[dict[str, str], list[str]]:
    """--opt VALUE / --opt=VALUE / -x VALUE pairs and the positional words."""
    opts: dict[str, str] = {}
    rest: list[str] = []
    it = iter(args)
    for a in it:
        key, eq, value = a.partition("=")
        if a.startswith("-") and eq:
            opts[key] = value
        elif a in with_value:
            opts[a] = next(it, "")
        elif a.startswith("-"):
            opts[a] = ""
        else:
            rest.append(a)
    return opts, rest


ADDUSER_VALUES = frozenset({"--home", "--shell", "--gecos", "--comment", "--ingroup", "--uid", "--gid",
                            "--firstuid", "--lastuid", "--firstgid", "--lastgid", "--conf"})


def _plain(args: Sequence[str]) -> bool:
    """No shell variable or command substitution left: the values are known."""
    return not any("$" in a or "`" in a for a in args)


def _adduser(args: list[str], acc: Collected) -> bool:
    if not _plain(args):
        return False
    opts, rest = _options(args, ADDUSER_VALUES)
    if "--system" not in opts or not rest:
        return False
    if len(rest) == 2:                                   # adduser USER GROUP: a membership
        acc.members.append({"user": rest[0], "group": rest[1]})
        return True
    user: dict[str, Any] = {"name": rest[0], "home": opts.get("--home", DEFAULT_HOME),
                            "shell": opts.get("--shell", NOLOGIN)}
    if opts.get("--uid", "").isdigit():
        user["uid"] = int(opts["--uid"])
    if "--ingroup" in opts:
        user["group"] = opts["--ingroup"]
    elif "--group" not in opts:
        user["group"] = "nogroup"                       # adduser --system without --group: nogroup
    gecos = opts.get("--gecos", opts.get("--comment", ""))
    if gecos:
        user["gecos"] = gecos
    acc.users.append(user)
    return True


def _addgroup(args: list[str], acc: Collected) -> bool:
    if not _plain(args):
        return False
    opts, rest = _options(args, frozenset({"--gid", "-g", "--conf"}))
    if not ("--system" in opts or "-r" in opts or "--gid" in opts) or len(rest) != 1:
        return False
    gid = opts.get("--gid", opts.get("-g", ""))
    acc.groups.append({"name": rest[0], **({"gid": int(gid)} if gid.isdigit() else {})})
    return True


def _useradd(args: list[str], acc: Collected) -> bool:
    if not _plain(args):
        return False
    opts, rest = _options(args, frozenset({"-u", "-g", "-d", "-s", "-c", "-G", "--uid", "--gid", "--home-dir",
                                           "--shell", "--comment", "--groups"}))
    if not ("-r" in opts or "--system" in opts) or len(rest) != 1:
        return False
    user: dict[str, Any] = {"name": rest[0], "home": opts.get("-d", opts.get("--home-dir", DEFAULT_HOME)),
                            "shell": opts.get("-s", opts.get("--shell", NOLOGIN))}
    uid = opts.get("-u", opts.get("--uid", ""))
    if uid.isdigit():
        user["uid"] = int(uid)
    if opts.get("-g", opts.get("--gid", "")):
        user["group"] = opts.get("-g", opts.get("--gid", ""))
    if opts.get("-c", opts.get("--comment", "")):
        user["gecos"] = opts.get("-c", opts.get("--comment", ""))
    acc.users.append(user)
    return True


def _alternatives(args: list[str], acc: Collected) -> bool:
    if not _plain(args):
        return False
    if not args or args[0] in ("--remove", "--remove-all", "--set", "--auto", "--display", "--query", "--list"):
        return bool(args)                                # choosing or removing: nothing for an image
    while args and args[0] in ("--quiet", "--verbose", "--force"):
        args = args[1:]
    if len(args) < 5 or args[0] != "--install" or not re.fullmatch(r"-?\d+", args[4]):
        return False
    link, name, path, priority = args[1], args[2], args[3], int(args[4])
    acc.alternatives.append({"name": name, "link": link, "path": path, "priority": priority})
    rest = args[5:]
    while len(rest) >= 4 and rest[0] == "--slave":
        acc.alternatives.append({"name": rest[2], "link": rest[1], "path": rest[3], "priority": priority})
        rest = rest[4:]
    return not rest


def _statoverride(args: list[str], acc: Collected) -> bool:
    if not _plain(args):
        return False
    words = [a for a in args if a not in ("--update", "--force", "--quiet", "--force-all", "--force-statoverride-add")]
    if not words or words[0] in ("--list", "--remove"):
        return bool(words)
    if len(words) != 5 or words[0] != "--add" or not re.fullmatch(r"0?[0-7]{3,4}", words[3]):
        return False
    mode = words[3] if len(words[3]) == 4 else "0" + words[3]
    acc.tmpfiles.append({"type": "z", "path": words[4], "mode": mode, "user": words[1], "group": words[2]})
    return True


UNIT_VERBS = frozenset({"enable", "start", "restart", "try-restart", "reload-or-restart", "defaults"})
QUIET_UNIT_VERBS = frozenset({"unmask", "was-enabled", "update-state", "debian-installed", "daemon-reload",
                              "daemon-reexec", "try-reload-or-restart", "show", "list-units",
                              "mask", "disable", "stop", "purge", "is-enabled", "is-active", "reload", "status"})


def _units(args: list[str], acc: Collected, *, name_first: bool = False) -> bool:
    """deb-systemd-helper / deb-systemd-invoke / systemctl VERB UNIT...; invoke-rc.d / update-rc.d NAME VERB."""
    if "--user" in args:
        return True                                      # user units: not the system's services
    words = [a for a in args if not a.startswith("-")]
    if name_first and len(words) >= 2:
        words = [words[1], words[0]]
    if not words:
        return False
    if words[0] in QUIET_UNIT_VERBS:
        return True
    if words[0] not in UNIT_VERBS or len(words) < 2 or not _plain(words):
        return False
    acc.enable += words[1:]
    return True


def _literal(path: str) -> bool:
    return path.startswith("/") and "$" not in path and "*" not in path


def _mkdir(args: list[str], acc: Collected) -> bool:
    opts, paths = _options(args, frozenset({"-m", "--mode"}))
    if not paths or not all(_literal(p) for p in paths):
        return False
    for p in paths:
        entry = {"type": "d", "path": p.rstrip("/") or p}
        if opts.get("-m", opts.get("--mode", "")):
            entry["mode"] = opts.get("-m", opts.get("--mode", ""))
        acc.tmpfiles.append(entry)
    return True


def _chown(args: list[str], acc: Collected, *, group_only: bool = False) -> bool:
    words = [a for a in args if not a.startswith("-")]
    if len(words) < 2 or not all(_literal(p) for p in words[1:]) or "$" in words[0]:
        return False
    user, _, group = ([f"root:{words[0]}"] if group_only else [words[0]])[0].partition(":")
    for p in words[1:]:
        _adjust(acc, p, user=user, group=group or "root")
    return True


def _chmod(args: list[str], acc: Collected) -> bool:
    words = [a for a in args if not a.startswith("-") or re.fullmatch(r"-[0-7]+", a)]
    if len(words) < 2 or not re.fullmatch(r"0?[0-7]{3,4}", words[0]) or not all(_literal(p) for p in words[1:]):
        return False
    for p in words[1:]:
        _adjust(acc, p, mode=words[0] if len(words[0]) == 4 else "0" + words[0])
    return True


def _adjust(acc: Collected, path: str, **change: str) -> None:
    """chown/chmod of a path: folded into the entry a mkdir/touch made for it, else a ``z`` entry."""
    for entry in acc.tmpfiles:
        if entry["path"] == path:
            entry.update(change)
            return
    acc.tmpfiles.append({"type": "z", "path": path, "mode": change.get("mode", "0644"), **change})


def _touch(args: list[str], acc: Collected) -> bool:
    paths = [a for a in args if not a.startswith("-")]
    if not paths or not all(_literal(p) for p in paths):
        return False
    acc.tmpfiles += [{"type": "f", "path": p} for p in paths]
    return True


def _ln(args: list[str], acc: Collected) -> bool:
    opts, words = _options(args, frozenset())
    symbolic = any(o.startswith("-") and not o.startswith("--") and "s" in o for o in opts)
    if not symbolic or len(words) != 2 or not _literal(words[1]):
        return False
    acc.tmpfiles.append({"type": "L", "path": words[1], "argument": words[0]})
    return True


def _template(path: str) -> bool:
    """A file a package ships as a template (under /usr): what ``cp``/``ucf`` may install elsewhere. A copy of
    anything else (``cp templates.dat templates.dat.old``, a backup of state) is not translated."""
    return _literal(path) and path.startswith("/usr/") and not path.endswith("/")


def _copy(acc: Collected, dest: str, source: str) -> None:
    """A configuration file installed from a file the package ships: a tmpfiles ``C`` entry (copied at image
    build when missing); a later chmod/chown folds into it."""
    if not any(e["path"] == dest for e in acc.tmpfiles):
        acc.tmpfiles.append({"type": "C", "path": dest, "argument": source})


def _cp(args: list[str], acc: Collected) -> bool:
    """``cp [-a|-p|-Z...] SRC DEST`` of literal paths: ``C DEST SRC``; ``cp SRC $VAR`` (a temporary copy a later
    ``ucf $VAR DEST`` installs): remembered for it."""
    words = [a for a in args if not a.startswith("-")]
    if len(words) != 2 or not _template(words[0]):
        return False
    if _literal(words[1]) and not words[1].endswith("/"):
        _copy(acc, words[1], words[0])
        return True
    if re.fullmatch(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?", words[1]):
        acc.staged[words[1].strip("${}")] = words[0]
        return True
    return False


UCF_VALUES = frozenset({"--sum-file", "--state-dir", "--src-dir"})   # the options of ucf that take a value


def _ucf(args: list[str], acc: Collected) -> bool:
    """``ucf [options] NEW DEST``: DEST installed from NEW (a shipped file, or the temporary copy ``cp`` made of
    one): ``C DEST SOURCE``. ``--purge`` (removal) is not a fresh install."""
    if "--purge" in args:
        return True
    _opts, words = _options(args, UCF_VALUES)
    if len(words) != 2 or not _literal(words[1]):
        return False
    source = acc.staged.get(words[0].strip("${}")) if words[0].startswith("$") else words[0]
    if source is None or not _template(source):
        return False
    _copy(acc, words[1], source)
    return True


def _pam_auth_update(args: list[str], acc: Collected) -> bool:
    """``pam-auth-update --package`` (libpam-runtime): the generated ``/etc/pam.d/common-*``; ``--remove``
    (removal) changes nothing in a fresh image."""
    if "--remove" in args:
        return True
    if "--package" in args:
        acc.generate.add("pam-auth")
        return True
    return False


def _update_ca_certificates(_args: list[str], acc: Collected) -> bool:
    """``update-ca-certificates`` (ca-certificates' postinst): the generated bundle
    ``/etc/ssl/certs/ca-certificates.crt`` (composer.package.actionplan's ``ca-certificates`` generator)."""
    acc.generate.add("ca-certificates")
    return True


def _set(flag: str) -> Callable[[list[str], Collected], bool]:
    def handler(_args: list[str], acc: Collected) -> bool:
        if flag == "ldconfig":
            acc.ldconfig = True
        else:
            acc.firstboot.add(flag)
        return True
    return handler


def _nothing(_args: list[str], _acc: Collected) -> bool:
    return True


def _debconf(args: list[str], acc: Collected) -> bool:
    acc.debconf.extend(a for a in args[:1] if "$" not in a)
    return True


# Commands that change nothing in a fresh image, or whose effect is read from the shipped files instead.
NO_EFFECT = ("set", "exit", "return", "true", "false", ":", "umask", "echo", "printf", "test", "[", "[[",
             "getent", "command", "which", "type", "shift", "local", "trap", "dpkg", "dpkg-query", "basename",
             "dirname", "cleanup", "dpkg-maintscript-helper", "py3compile", "pycompile", "py3clean", "pyclean",
             "systemd-sysusers", "systemd-tmpfiles", "runit-helper", "db_stop", "db_version", "db_capb",
             "db_title", "db_settitle", "sleep", "break", "continue", "wait", "unset", "export", "readonly",
             "update-initramfs", "restorecon", "systemd-hwdb", "udevadm", "mandb", "dpkg-trigger", "read",
             "grep", "cut", "awk", "head", "tail", "tr", "sort", "uniq", "wc", "cat", "find", "ls", "id",
             "stat", "readlink", "realpath", "uname", "env", "expr", "seq", "cmp", "diff")
COMMANDS: Mapping[str, Callable[[list[str], Collected], bool]] = {
    **{name: _nothing for name in NO_EFFECT},
    "adduser": _adduser, "addgroup": _addgroup, "useradd": _useradd, "groupadd": _addgroup,
    "update-alternatives": _alternatives, "dpkg-statoverride": _statoverride,
    "deb-systemd-helper": _units, "deb-systemd-invoke": _units, "systemctl": _units,
    "invoke-rc.d": lambda a, acc: _units(a, acc, name_first=True),
    "update-rc.d": lambda a, acc: _units(a, acc, name_first=True),
    "ldconfig": _set("ldconfig"), "ssh-keygen": _set("ssh-host-keys"),
    "systemd-machine-id-setup": _set("machine-id"),
    "mkdir": _mkdir, "chown": _chown, "chgrp": lambda a, acc: _chown(a, acc, group_only=True), "chmod": _chmod,
    "touch": _touch, "ln": _ln, "cp": _cp, "ucf": _ucf, "ucfr": _nothing,
    "pam-auth-update": _pam_auth_update, "update-ca-certificates": _update_ca_certificates,
    "sed": lambda a, acc: not any(x.startswith(("-i", "--in-place")) for x in a),
    **{f"db_{verb}": _debconf for verb in ("get", "set", "input", "go", "fset", "fget", "reset", "register",
                                           "unregister", "subst", "purge", "metaget")},
}
# debhelper's generated sections, by generator: how each is read (None: by its commands, as hand-written code)
DH: Mapping[str, str] = {
    "dh_installsystemd": "commands", "dh_installinit": "commands", "dh_installdeb": "nothing",
    "dh_installsysusers": "nothing", "dh_installtmpfiles": "nothing", "dh_runit": "nothing",
    "dh_installsystemduser": "nothing", "dh_python3": "nothing", "dh_makeshlibs": "commands",
    "dh_installdebconf": "nothing", "dh_installmenu": "nothing", "dh_installcatalogs": "nothing",
    "dh_installxfonts": "nothing", "dh_apache2": "nothing", "dh_installemacsen": "nothing",
    "dh_usrlocal": "nothing", "dh_installudev": "nothing", "dh_installmodules": "nothing",
    "dh_installdocs": "nothing", "dh_icons": "nothing", "dh_installinfo": "nothing",
}

_UPGRADING = re.compile(r'--compare-versions\s+"?\$\{?2|-n\s+"?\$\{?2|\[\s*"?\$\{?2\}?"?\s*\]')
_UPGRADE_ARG = re.compile(r'"?\$\{?1\}?"?\s*=\s*"?(upgrade|abort-upgrade)"?')
_FRESH_ARG = re.compile(r"configure|install")


def upgrade_only(condition: str) -> bool:
    """An ``if`` condition that only holds on an upgrade (``$2``, the old version, is empty on a fresh install)."""
    return bool(_UPGRADING.search(condition)) or (bool(_UPGRADE_ARG.search(condition))
                                                  and not _FRESH_ARG.search(condition))
_FUNCTION = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\s*\(\)\s*\{?$")
_HEREDOC = re.compile(r"<<-?\s*['\"]?([A-Za-z_][A-Za-z0-9_]*)")
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
KEYWORDS = frozenset({"if", "then", "else", "elif", "fi", "do", "done", "for", "while", "until", "case", "esac",
                      "in", "!", "{", "}", "(", ")", ";;"})
SEPARATORS = frozenset({"&&", "||", ";", "|", "&", ";;", "(", ")"})
REDIRECTS = frozenset({">", ">>", "<", ">&", "<&", ">|", "&>", "<>"})


def _logical_lines(text: str) -> list[str]:
    """Lines with continuations joined, heredoc bodies and comment-only lines dropped."""
    out: list[str] = []
    pending = ""
    heredoc = ""
    for raw in text.splitlines():
        if heredoc:
            if raw.strip() == heredoc:
                heredoc = ""
            continue
        line = pending + raw
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if line.strip().startswith("#"):
            out.append(line.strip())          # kept: debhelper's section markers are comments
            continue
        m = _HEREDOC.search(line)
        if m:
            heredoc = m.group(1)
        if line.strip():
            out.append(line.strip())
    return out


def _commands(line: str) -> list[list[str]] | None:
    """The simple commands of a line: words, without keywords, assignments and redirections."""
    try:
        lex = shlex.shlex(line, posix=True, punctuation_chars=True)
        lex.whitespace_split = True
        lex.commenters = "#"
        tokens = list(lex)
    except ValueError:
        return None
    out: list[list[str]] = []
    current: list[str] = []
    skip_next = pending_write = False
    for tok in tokens:
        if skip_next and not pending_write:
            skip_next = False
            continue
        skip_next = False
        if tok in REDIRECTS or (tok.startswith((">", "<")) and set(tok) <= set("<>&|")):
            skip_next = True
            if current and current[-1].isdigit():
                current.pop()
            if tok in (">", ">>", ">|", "&>"):
                pending_write = True
            continue
        if pending_write:
            pending_write = False
            if tok != "/dev/null" and not tok.startswith("&"):
                current.append(f">{tok}")   # writes a file: never translated
            continue
        if tok in SEPARATORS or (tok and set(tok) <= set(";&|()")):
            out.append(current)
            current = []
            continue
        if not current and (tok in KEYWORDS or _ASSIGN.match(tok)):
            continue
        current.append(tok)
    out.append(current)
    return [c for c in out if c]


@dataclass(slots=True)
class _Frame:
    kind: str        # if | case
    skip: bool       # this frame's current branch does not run on a fresh install
    parent: bool     # the skip state outside the frame
    upgrade: bool = False


def read_script(name: str, text: str, acc: Collected) -> None:
    """One maintainer script, line by line (see the module's docstring)."""
    stack: list[_Frame] = []
    section = ""             # the debhelper generator of the current section, "" in hand-written code
    debconf = False
    lines = _logical_lines(text)
    functions = {m.group(0).split("(")[0].strip() for line in lines if (m := _FUNCTION.match(line))}
    variables: dict[str, str] = {}
    for line in lines:
        line = _expand(line, variables)
        if line.startswith("#"):
            m = re.match(r"# Automatically added by (dh_[a-z0-9_]+)", line)
            section = m.group(1) if m else ("" if line.startswith("# End automatically added section") else section)
            if m and section not in DH:
                acc.skip(name, f"debhelper section {section} (not known)")
            continue
        skip = stack[-1].skip if stack else False
        first = line.split()[0]
        if first == "case":
            stack.append(_Frame(kind="case", skip=skip, parent=skip))
            continue
        if first == "esac" and stack:
            stack.pop()
            continue
        if first in ("if", "elif", "else", "fi") and _branch(first, line, stack, skip):
            continue
        if stack and stack[-1].kind == "case" and re.match(r"^[^\s()]+(\s*\|\s*[^\s()]+)*\s*\)", line):
            labels, _, line = line.partition(")")
            fresh = any(lab.strip().strip("\"'") in ("configure", "install", "*") for lab in labels.split("|"))
            stack[-1].skip = stack[-1].parent or not fresh
            skip = stack[-1].skip
            if not line.strip():
                continue
        if skip or DH.get(section) == "nothing" or _FUNCTION.match(line) or line in ("}", "{"):
            continue
        if line.startswith(". ") or line.startswith("source "):
            debconf = debconf or "debconf" in line
            if "debconf" not in line:
                acc.skip(name, line)
            continue
        if _ASSIGN.match(line):
            _assign(line, variables)
            continue
        if first in ("for", "while", "until"):
            line = line.partition("; do")[2] or line.partition(";do")[2]
            if not line.strip():
                continue
        commands = _commands(line)
        if commands is None:
            acc.skip(name, line)
            continue
        for words in commands:
            if words[0] not in functions:
                _command(name, words, acc)
    if debconf or acc.debconf:
        acc.skip(name, f"debconf questions ({', '.join(dict.fromkeys(acc.debconf)) or 'none read'}): the "
                       "answers' defaults are what the package's files say")
        acc.debconf.clear()


def _expand(line: str, variables: Mapping[str, str]) -> str:
    """``$NAME``/``${NAME}`` of the variables a script set to literal values, replaced by them."""
    if "$" not in line or not variables:
        return line
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?",
                  lambda m: variables.get(m.group(1), m.group(0)), line)


def _assign(line: str, variables: dict[str, str]) -> None:
    """``NAME=VALUE`` alone on a line: remembered when VALUE is literal (after expansion), forgotten otherwise."""
    name, _, value = line.partition("=")
    words = words_of(value) if "`" not in value and "$" not in value else None
    if words is not None and len(words) <= 1 and not any(c in value for c in ";&|<>"):
        variables[name] = words[0] if words else ""
    else:
        variables.pop(name, None)


def _branch(first: str, line: str, stack: list[_Frame], skip: bool) -> bool:
    """if/elif/else/fi: push, switch or pop a frame. The rest of an ``if`` line (its condition) is not read."""
    if first == "if":
        upgrade = upgrade_only(line)
        stack.append(_Frame(kind="if", skip=skip or upgrade, parent=skip, upgrade=upgrade))
        return True
    if not stack or stack[-1].kind != "if":
        return True
    frame = stack[-1]
    if first == "fi":
        stack.pop()
    elif first == "elif":
        frame.skip = frame.parent or upgrade_only(line)
    else:
        frame.skip = frame.parent   # the else of an upgrade-only test is what a fresh install runs
    return True


def _command(script: str, words: list[str], acc: Collected) -> None:
    command = words[0].rsplit("/", 1)[-1]
    handler = COMMANDS.get(command)
    args = words[1:]
    writes = any(a.startswith(">") for a in args)
    if handler is None or writes or not handler([a for a in args if not a.startswith(">")], acc):
        acc.skip(script, " ".join(words))
