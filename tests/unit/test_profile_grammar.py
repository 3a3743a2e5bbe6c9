"""Profile strings have grammars: hostile values are refused at file:line:column, all at once, by the
schema and by code; the overlay and the trust roots stay inside the profile's git work tree."""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composer.errors import UserError
from composer.limits import value_depth
from composer.profile.grammar import GRAMMARS, grammar_errors
from composer.profile.load import load_profile
from composer.profile.yamlpos import load_yaml
from composer.schema import SCHEMA_DIR

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJqyXMLUCVyQD/bK8iUi9E1vjdIcowRm0l9x4ZZqxxT me@laptop"
RSA_BODY = "AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7"  # declares 'ssh-rsa'

BASE = """
name: demo
architectures: [x86_64]
repositories:
  - name: sample
    url: ../repo
    root: root.json
packages: [busybox]
outputs:
  - type: rootfs
"""


def write(tmp_path: Path, extra: str = "", base: str = BASE) -> Path:
    (tmp_path / "root.json").write_text("{}")
    p = tmp_path / "p.yaml"
    p.write_text(textwrap.dedent(base).lstrip("\n") + textwrap.dedent(extra))
    return p


def errors_of(path: Path) -> list[str]:
    with pytest.raises(UserError) as info:
        load_profile(path)
    lines = info.value.message.splitlines()
    return [line.strip() for line in lines[1:]] if len(lines) > 1 else lines


def user(**fields: Any) -> str:
    return "users:\n  - " + json.dumps({"name": "alice", **fields}) + "\n"


# ---------------------------------------------------------------- the grammars themselves

HOSTILE: dict[str, list[str]] = {
    "account": ["root\n", "Alice", "a:b", "-x", "a" * 33, "", "x\x00", "é"],
    "path": ["/bin/sh\nevil::0:0::/:/bin/sh", "/bin/sh\n", "bin/sh", "/home/../etc", "/home/./x", "/home//x",
             "/home/x/", "/", "/a:b", "/a\tb", "/a b", "/" + "a" * 4096, "/home/.."],
    "gecos": ["a:b", "line\nnext", "tab\there", "\x7f", "x" * 256, "c1\x85"],
    "password-hash": ["", "plain", "$6$salt$hash\n", "$6$salt:x$hash", "$6$", "!\n", "$6$a$b\nroot::0:0"],
    "ssh-key": [ED25519 + "\nssh-ed25519 AAAA x", "ssh-ed25519", "ssh-foo AAAA", "command=\"x\" " + ED25519,
                "ssh-ed25519 AAAA\x00", "ssh-ed25519  AAAA"],
    "hostname": ["host\n", "-host", "host-", "a_b", "a" * 64, ".".join(["a" * 63] * 4) + ".ab", "h..x", "h o"],
    "cmdline": ["quiet\ninit=/bin/sh", "quiet\x1b", "x" * 4097],
    "check-name": ["../../etc/x", "a/b", ".hidden", "x\n", "A"],
    "name": ["Demo", "../x", "x\n", "a/b", ""],
    "relative": ["/etc/ssh", "a\nb", ""],
    "url": ["http://x/\nfoo", "a b"],
    "line": ["a\nb", ""],
}
GOOD: dict[str, list[str]] = {
    "account": ["alice", "_svc", "web-1", "a" * 32],
    "path": ["/bin/sh", "/home/alice", "/usr/local/bin/fish", "/srv/.config/x", "/opt/a..b"],
    "gecos": ["", "Alice Liddell,Room 1,555-0100", "Zoë"],
    "password-hash": ["!", "*", "!!", "!*", "$6$rounds=5000$abc$def/ghi.", "$y$j9T$F5Jx5fExrKuJdvDfqx3gM/$3TG",
                      "$2b$12$abcdefghijklmnopqrstuv", "!$6$salt$hash"],
    "ssh-key": [ED25519, ED25519.rsplit(" ", 1)[0]],
    "hostname": ["minimal", "web-1.example.org", "a" * 63, ".".join(["a" * 63] * 3) + "." + "a" * 61],
    "cmdline": ["", "quiet console=ttyS0 root=/dev/vda2"],
    "check-name": ["net-up", "disk.ok"],
}


@pytest.mark.parametrize(("grammar", "value"), [(g, v) for g, vs in HOSTILE.items() for v in vs])
def test_hostile_values_do_not_match(grammar: str, value: str) -> None:
    assert not GRAMMARS[grammar].matches(value), (grammar, value)


@pytest.mark.parametrize(("grammar", "value"), [(g, v) for g, vs in GOOD.items() for v in vs])
def test_ordinary_values_match(grammar: str, value: str) -> None:
    assert GRAMMARS[grammar].matches(value), (grammar, value)


def test_the_schema_carries_the_same_patterns_and_json_schema_agrees_with_fullmatch() -> None:
    from jsonschema import Draft202012Validator
    schema = json.loads((SCHEMA_DIR / "profile.schema.json").read_text())
    for g in GRAMMARS.values():
        d = schema["$defs"][g.name]
        assert (d["pattern"], d["maxLength"]) == (g.pattern, g.max_length), g.name
        assert not re.search(r"(?<!\\)\$", g.pattern), f"{g.name}: '$' also matches before a final newline"
        check = Draft202012Validator(d)
        for value in HOSTILE.get(g.name, []):
            assert not check.is_valid(value), (g.name, value)
        for value in GOOD.get(g.name, []):
            assert check.is_valid(value), (g.name, value)


# ---------------------------------------------------------------- through the loader, every error at once

def test_a_newline_in_a_shell_never_reaches_passwd(tmp_path: Path) -> None:
    errs = errors_of(write(tmp_path, user(shell="/bin/sh\nevil::0:0::/:/bin/sh")))
    assert len(errs) == 1 and "p.yaml:" in errs[0] and "$.users[0].shell" in errs[0], errs


def test_every_hostile_user_field_is_reported_at_once_with_its_place(tmp_path: Path) -> None:
    extra = """
    hostname: "evil\\nhost"
    kernel: {cmdline: "quiet\\ninit=/bin/sh"}
    users:
      - name: alice
        uid: 0
        shell: "/bin/sh\\n"
        home: /home/../../etc
        gecos: "Alice:0:0"
        password-hash: ""
        ssh-keys: ["ssh-ed25519 AAAA\\nssh-ed25519 BBBB"]
        groups: ["wheel\\n"]
    boot-tests:
      - name: t
        expect: ["ok"]
        checks: {"../../../etc/cron.d/x": "true"}
    """
    errs = errors_of(write(tmp_path, extra))
    text = "\n".join(errs)
    for where in ("$.hostname", "$.kernel.cmdline", "$.users[0].uid", "$.users[0].shell", "$.users[0].home",
                  "$.users[0].gecos", "$.users[0].password-hash", "$.users[0].ssh-keys[0]",
                  "$.users[0].groups[0]", "$.boot-tests[0].checks"):
        assert where in text, (where, text)
    assert all(re.match(r".*p\.yaml:\d+:\d+: ", e) for e in errs), errs


def test_code_checks_catch_what_the_schema_would_miss() -> None:
    """The second layer alone (as if the schema were loosened): grammar_errors over a raw document."""
    found: list[tuple[str, str]] = []
    doc = {"users": [{"name": "alice", "uid": 0, "shell": "/bin/sh\n", "home": "/a/../b"},
                     {"name": "alice", "uid": 1000}, {"name": "bob", "uid": 1000},
                     {"name": "carol", "ssh-keys": ["ssh-ed25519 " + RSA_BODY]}],
           "boot-tests": [{"name": "t", "checks": {"a/b": "x"}}], "hostname": "x" * 300}
    grammar_errors(doc, lambda path, msg, hint: found.append((".".join(map(str, path)), msg)))
    places = [p for p, _ in found]
    assert "users.0.uid" in places and "users.0.shell" in places and "users.0.home" in places
    assert "users.1.name" in places and "users.2.uid" in places and "hostname" in places
    assert ("users.3.ssh-keys.0", "'ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7': the key body is a "
            "'ssh-rsa' key, not 'ssh-ed25519'") in found
    assert "boot-tests.0.checks.a/b" in places


def test_uid_zero_is_root_only_and_ids_are_unique(tmp_path: Path) -> None:
    extra = "users:\n  - {name: root, uid: 0}\n  - {name: bob, uid: 1000}\n  - {name: eve, uid: 1000}\n" \
            "  - {name: bob, uid: 1001}\n  - {name: mal, uid: 65534}\n"
    text = "\n".join(errors_of(write(tmp_path, extra)))
    assert "uid 1000 is already used by users[1]" in text and "user 'bob' is listed twice" in text
    assert "$.users[4].uid" in text and "$.users[0]" not in text, text


def test_good_users_load(tmp_path: Path) -> None:
    extra = user(uid=1000, shell="/bin/sh", home="/home/alice", gecos="Alice,,,", groups=["wheel"],
                 **{"password-hash": "$6$salt$hash", "ssh-keys": [ED25519]})
    assert load_profile(write(tmp_path, extra)).users[0].gecos == "Alice,,,"


def test_deep_nesting_is_a_clear_limit_error_not_a_recursion_error(tmp_path: Path) -> None:
    for depth in (100, 20000):
        p = tmp_path / f"deep{depth}.yaml"
        p.write_text("name: " + "[" * depth + "]" * depth + "\n")
        with pytest.raises(UserError, match="max_depth=64 \\(VCOMP_LIMIT_MAX_DEPTH\\)"):
            load_profile(p)
    assert value_depth(load_yaml(b"a: " + b"[" * 60 + b"]" * 60, "ok.yaml").value) == 61


# ---------------------------------------------------------------- overlay and trust roots: inside the work tree

def git_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    (tree / "profiles").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    return tree


def overlay_profile(tree: Path, files: str, root: str = "root.json") -> Path:
    prof = tree / "profiles"
    (prof / "root.json").write_text("{}")
    p = prof / "p.yaml"
    p.write_text(BASE.replace("root: root.json", f"root: {root}").lstrip("\n") + f"files: {files}\n")
    return p


@pytest.mark.parametrize("files", ["/etc/ssh", "../../..", "../../outside", "'overlay/../../../..'"])
def test_an_overlay_outside_the_work_tree_is_refused(tmp_path: Path, files: str) -> None:
    tree = git_tree(tmp_path)
    (tmp_path / "outside").mkdir()
    (tree / "profiles" / "overlay").mkdir()
    errs = errors_of(overlay_profile(tree, files))
    assert len(errs) == 1 and "$.files" in errs[0], errs


def test_an_overlay_symlink_that_leaves_the_work_tree_is_refused(tmp_path: Path) -> None:
    tree = git_tree(tmp_path)
    (tmp_path / "secrets").mkdir()
    (tree / "profiles" / "overlay").symlink_to(tmp_path / "secrets")
    errs = errors_of(overlay_profile(tree, "overlay"))
    assert "passes through a symlink that leads outside" in errs[0], errs
    (tree / "profiles" / "root-link.json").symlink_to("/etc/passwd")
    (tree / "profiles" / "overlay").unlink()
    (tree / "profiles" / "overlay").mkdir()
    errs = errors_of(overlay_profile(tree, "overlay", root="root-link.json"))
    assert "$.repositories[0].root" in errs[0] and "symlink" in errs[0], errs


def test_an_overlay_elsewhere_in_the_work_tree_is_fine_and_outside_git_the_profile_dir_bounds_it(
        tmp_path: Path) -> None:
    tree = git_tree(tmp_path)
    (tree / "overlays" / "web").mkdir(parents=True)
    assert load_profile(overlay_profile(tree, "../overlays/web")).overlay == (tree / "overlays" / "web")
    plain = tmp_path / "plain"
    (plain / "profiles" / "overlay").mkdir(parents=True)
    (plain / "elsewhere").mkdir()
    assert load_profile(overlay_profile(plain, "overlay")).overlay is not None
    errs = errors_of(overlay_profile(plain, "../elsewhere"))
    assert "leads outside" in errs[0], errs


def test_the_overlay_is_part_of_the_profile_digest(tmp_path: Path) -> None:
    tree = git_tree(tmp_path)
    ov = tree / "profiles" / "overlay"
    (ov / "etc").mkdir(parents=True)
    (ov / "etc" / "motd").write_text("hello\n")
    path = overlay_profile(tree, "overlay")
    seen = {load_profile(path).digest}

    def changed() -> str:
        d = load_profile(path).digest
        assert d not in seen
        seen.add(d)
        return d

    (ov / "etc" / "motd").write_text("hello!\n")
    changed()
    os.chmod(ov / "etc" / "motd", 0o600)
    changed()
    (ov / "etc" / "link").symlink_to("motd")
    changed()
    (ov / "etc" / "link").unlink()
    (ov / "etc" / "link").symlink_to("/etc/motd")
    changed()
    (ov / "etc" / "empty").mkdir()
    changed()
    os.mkfifo(ov / "etc" / "fifo")
    with pytest.raises(UserError, match="fifo"):
        load_profile(path)


# ---------------------------------------------------------------- properties and fuzzing

CONTROL = st.characters(min_codepoint=0, max_codepoint=31) | st.sampled_from(["\x7f", "\x85", "\x9b"])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40), CONTROL, st.text(max_size=40))
def test_no_grammar_of_a_line_accepts_a_control_character(before: str, bad: str, after: str) -> None:
    value = before + bad + after
    for name in ("account", "path", "gecos", "password-hash", "ssh-key", "hostname", "cmdline", "check-name",
                 "name", "line", "url", "relative", "pattern", "capability"):
        assert not GRAMMARS[name].matches(value), (name, value)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40), st.text(max_size=40))
def test_fields_of_colon_separated_files_never_accept_a_colon(before: str, after: str) -> None:
    for name in ("account", "path", "gecos", "password-hash"):
        assert not GRAMMARS[name].matches(before + ":" + after), name


JSONISH = st.recursive(st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.text(max_size=20),
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                    max_size=4), max_leaves=20)
KEYS = ["name", "architectures", "repositories", "packages", "outputs", "users", "hostname", "kernel", "files",
        "boot-tests", "policy", "capabilities", "drivers", "description", "init"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(KEYS), JSONISH, st.sampled_from(KEYS), JSONISH)
def test_a_mangled_profile_is_a_user_error_never_a_crash(tmp_path: Path, k1: str, v1: Any, k2: str,
                                                         v2: Any) -> None:
    import yaml
    doc = yaml.safe_load(BASE)
    doc["users"] = [{"name": "alice", "uid": 1000, "shell": "/bin/sh"}]
    doc[k1] = v1
    doc[k2] = v2
    (tmp_path / "root.json").write_text("{}")
    p = tmp_path / "fuzz.yaml"
    p.write_text(yaml.safe_dump(doc))
    try:
        load_profile(p)
    except UserError as exc:
        assert exc.message and "Traceback" not in exc.message


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200) | JSONISH.map(lambda v: json.dumps(v).encode())
       | st.tuples(JSONISH, JSONISH).map(lambda t: json.dumps({"format": 1, "architectures": t[0],
                                                              "indexes": t[1]}).encode())
       | JSONISH.map(lambda v: json.dumps({"format": 1, "architectures": {"x86_64": [v, {"name": "a"}]}}).encode()))
def test_a_random_lock_is_a_user_error_never_a_crash(tmp_path: Path, data: bytes) -> None:
    from composer.solve.lock import read_lock
    from composer.solve.lockcheck import differences, held_of, index_changes
    from composer.solve.lockmodel import Lock, LockedPackage, Reason
    path = tmp_path / "x.lock"
    path.write_bytes(data)
    try:
        doc = read_lock(path)
    except UserError:
        return
    assert doc is not None
    index_changes(doc, {"main": {"x86_64": "d"}})
    held_of(doc)
    differences(Lock(profile="p", inputs="", architectures={"x86_64": (LockedPackage(
        name="a", version="1.0.0", arch="x86_64", sha256="", size=0, repository="", signer="",
        reason=Reason.parse("r")),)}), doc)


def test_hostile_host_checks_are_reported_at_once_with_their_place(tmp_path: Path) -> None:
    extra = """
    boot-tests:
      - name: t
        expect: ["ok"]
        host-checks:
          - http: {port: 0}
          - http: {port: 80, path: "/a b\\r\\nHost: evil"}
          - ssh: {user: "root\\n", command: "id\\nreboot", key: /etc/shadow}
          - ssh: {user: a}
          - ftp: {port: 21}
          - {http: {port: 80}, ssh: {user: a, command: b}}
          - http: {port: 80, timeout: 100000}
          - ssh: {user: a, command: b, key: ../../../../../../root/.ssh/id_ed25519}
    """
    text = "\n".join(errors_of(write(tmp_path, extra)))
    assert "$.boot-tests[0].host-checks[7].ssh.key: ssh check key '../../../../../../root/.ssh/id_ed25519' leads " \
           "outside" in text, text
    for where in ("$.boot-tests[0].host-checks[0].http.port", "$.boot-tests[0].host-checks[1].http.path",
                  "$.boot-tests[0].host-checks[2].ssh.user", "$.boot-tests[0].host-checks[2].ssh.command",
                  "$.boot-tests[0].host-checks[2].ssh.key", "$.boot-tests[0].host-checks[3].ssh",
                  "$.boot-tests[0].host-checks[4]", "$.boot-tests[0].host-checks[5]",
                  "$.boot-tests[0].host-checks[6].http.timeout"):
        assert where in text, (where, text)


def test_code_checks_the_host_checks_strings_too() -> None:
    found: list[tuple[str, str]] = []
    doc = {"boot-tests": [{"name": "t", "host-checks": [{"http": {"port": 80, "path": "/\n"}},
                                                        {"ssh": {"user": "a\n", "command": "x\ny", "key": "/k"}}]}]}
    grammar_errors(doc, lambda path, msg, hint: found.append((".".join(map(str, path)), msg)))
    assert {p for p, _ in found} == {"boot-tests.0.host-checks.0.http.path", "boot-tests.0.host-checks.1.ssh.user",
                                     "boot-tests.0.host-checks.1.ssh.command", "boot-tests.0.host-checks.1.ssh.key"}


def test_a_user_carries_at_most_64_ssh_keys(tmp_path: Path) -> None:
    keys = ", ".join(f'"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJqyXMLUCVyQD/bK8iUi9E1vjdIcowRm0l9x4ZZqxxT k{i}"'
                     for i in range(65))
    text = "\n".join(errors_of(write(tmp_path, f"users:\n  - name: alice\n    ssh-keys: [{keys}]\n")))
    assert "$.users[0].ssh-keys" in text and "too long" in text, text
