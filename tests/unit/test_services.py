"""Services: the profile's ``services:`` (enable, disable, override; file:line:column errors), the effective set
in start order (``after``, cycles), ``/etc/veridian/services.toml`` and init's ``services.d`` (deterministic)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from composer.errors import UserError
from composer.package.actions import Service
from composer.pkgmgr import services
from composer.pkgmgr.actions import SERVICES, apply_actions, apply_services
from composer.profile.load import load_profile
from composer.profile.model import ServiceOverride
from composer.rootfs import Root
from tests.unit.test_actions import base_root, record, snapshot
from tests.unit.test_profile import GOOD, errors_of, write

WEB = """
[[actions.users]]
name = "www"

[[actions.services]]
name = "httpd"
command = ["/bin/busybox", "httpd", "-f", "-p", "80"]
user = "www"
readiness = "tcp:80"
after = ["syslog", "network"]
environment = { LANG = "C", HOME = "/var/www" }

[[actions.services]]
name = "syslog"
command = ["/bin/busybox", "syslogd", "-n"]
"""


def declared(*pairs: tuple[str, str, tuple[str, ...]]) -> dict[str, tuple[str, Service]]:
    return {name: (package, Service(name=name, command=("/bin/true",), after=after)) for name, package, after in pairs}


def test_profile_services_load_and_round_trip(tmp_path: Path) -> None:
    prof = load_profile(write(tmp_path, GOOD + """
services:
  - name: httpd
    command: [/bin/busybox, httpd, -f, -p, "8080"]
    environment: {LANG: C.UTF-8}
    user: www
  - name: syslog
    enable: false
"""))
    httpd, syslog = prof.services
    assert httpd.command == ("/bin/busybox", "httpd", "-f", "-p", "8080") and httpd.enable is None
    assert syslog.enable is False and syslog.where.endswith("p.yaml:29:5: $.services[1]")
    assert prof.to_dict()["services"] == [
        {"name": "httpd", "command": ["/bin/busybox", "httpd", "-f", "-p", "8080"],
         "environment": {"LANG": "C.UTF-8"}, "user": "www"}, {"name": "syslog", "enable": False}]


def test_profile_service_errors_name_file_line_column(tmp_path: Path) -> None:
    errors = errors_of(write(tmp_path, GOOD + """
services:
  - name: httpd
    command: [busybox, httpd]
    readiness: "tcp:70000"
    after: [httpd]
  - name: httpd
    enable: false
"""))
    text = "\n".join(errors)
    assert "p.yaml:26:15: $.services[0].command[0]: 'busybox' is not an absolute path" in text
    assert "$.services[0].readiness: 'tcp:70000': the port must be 1-65535" in text
    assert "$.services[0].after: service 'httpd' cannot come after itself" in text
    assert "p.yaml:29:5: $.services[1].name: service 'httpd' is listed twice (first at line 25)" in text
    bad = errors_of(write(tmp_path, GOOD + "services:\n  - name: x\n    restart: sometimes\n", "q.yaml"))
    assert any("q.yaml:25:5: $.services[0].restart" in e for e in bad), bad


def test_unknown_service_names_the_place_the_providers_and_a_guess() -> None:
    entry = ServiceOverride(name="htpd", enable=False, where="p.yaml:22:5: $.services[0]")
    with pytest.raises(UserError) as info:
        services.effective(declared(("httpd", "web", ()), ("ssh", "openssh-server", ())), [entry])
    assert info.value.message == ("p.yaml:22:5: $.services[0]: no installed package provides service 'htpd' "
                                  "(did you mean 'httpd'?)")
    assert info.value.hint == "the packages provide: httpd (web), ssh (openssh-server)"


def test_overrides_replace_fields_and_merge_the_environment() -> None:
    base = {"web": ("web", Service(name="web", command=("/bin/a",), environment={"A": "1", "B": "2"},
                                   after=("db",)))}
    entry = ServiceOverride(name="web", command=("/bin/b", "-x"), environment={"B": "3", "C": "4"}, user="www",
                            after=())
    (e,) = services.effective(base, [entry])
    assert e.package == "web" and e.service.command == ("/bin/b", "-x") and e.service.user == "www"
    assert dict(e.service.environment) == {"A": "1", "B": "3", "C": "4"} and e.service.after == ()
    assert e.service.restart == "on-failure", "fields the profile does not name stay the package's"


def test_start_order_follows_after_ties_by_name_and_skips_disabled() -> None:
    chosen = services.effective(declared(("web", "w", ("db", "cache")), ("db", "d", ("network",)),
                                         ("cache", "c", ()), ("zz", "z", ()), ("aa", "a", ("web",))), [])
    assert services.start_order(chosen) == ["cache", "db", "web", "aa", "zz"]
    off = services.effective(declared(("web", "w", ("db",)), ("db", "d", ())),
                             [ServiceOverride(name="db", enable=False)])
    assert services.start_order(off) == ["web"], "a disabled service is not started and orders nothing"


def test_a_cycle_is_an_error_naming_it() -> None:
    chosen = services.effective(declared(("a", "pa", ("c",)), ("b", "pb", ("a",)), ("c", "pc", ("b",)),
                                         ("d", "pd", ("a",))), [])
    with pytest.raises(UserError, match=r"in a cycle: a \(pa\) -> c \(pc\) -> b \(pb\) -> a \(pa\)"):
        services.start_order(chosen)
    broken = services.effective(declared(("a", "pa", ("c",)), ("b", "pb", ("a",)), ("c", "pc", ("b",))),
                                [ServiceOverride(name="a", after=())])
    assert services.start_order(broken) == ["a", "b", "c"]


def test_services_toml_and_init_files_are_written_deterministically(tmp_path: Path) -> None:
    records = {"web": record("web", WEB)}
    overrides = [ServiceOverride(name="httpd", environment={"LANG": "C.UTF-8"})]
    root = base_root(tmp_path)
    with Root.open(root) as r:
        apply_actions(r, records)
        written = apply_services(r, records, overrides)
    doc = tomllib.loads((root / SERVICES).read_text())
    assert doc["start-order"] == ["syslog", "httpd"]
    assert doc["services"]["httpd"]["environment"] == {"HOME": "/var/www", "LANG": "C.UTF-8"}
    assert doc["services"]["httpd"]["package"] == "web"
    init = (root / services.INIT_DIR / "002-httpd").read_text().splitlines()
    uid = (root / "etc" / "passwd").read_text().split("www:x:")[1].split(":")[0]
    assert f"uid {uid}" in init and "user www" in init and init[-5:] == [
        "arg /bin/busybox", "arg httpd", "arg -f", "arg -p", "arg 80"]
    assert "env HOME=/var/www" in init and "env LANG=C.UTF-8" in init and "ready tcp:80" in init
    assert {SERVICES, f"{services.INIT_DIR}/001-syslog", f"{services.INIT_DIR}/002-httpd"} <= set(written)
    first = snapshot(root)
    with Root.open(root) as r:
        apply_services(r, records, overrides)
    assert snapshot(root) == first
    other = base_root(tmp_path / "again")
    with Root.open(other) as r:
        apply_actions(r, records)
        apply_services(r, records, overrides)
    assert snapshot(other) == first, "same inputs, same bytes"
    with Root.open(root) as r:
        apply_services(r, records, [ServiceOverride(name="httpd", enable=False)])
    assert sorted(p.name for p in (root / services.INIT_DIR).iterdir()) == ["001-syslog"], "stale files go"


def test_a_service_user_the_image_lacks_is_an_error(tmp_path: Path) -> None:
    root = base_root(tmp_path)
    with Root.open(root) as r, pytest.raises(UserError, match="service 'httpd' runs as user 'www', which the image"):
        apply_services(r, {"web": record("web", WEB)})


def test_service_strings_have_grammars_newlines_never_reach_init(tmp_path: Path) -> None:
    errors = errors_of(write(tmp_path, GOOD + """
services:
  - name: "web\\nname x"
    command: ["/bin/sh", "a\\narg evil"]
    environment: {"A": "1\\nenv B=2", "1X": "y"}
    readiness: "file:/run/../x"
    working-directory: /var/../www
"""))
    text = "\n".join(errors)
    for where in ("$.services[0].name", "$.services[0].command[1]", "$.services[0].environment.A",
                  "$.services[0].environment.1X", "$.services[0].readiness", "$.services[0].working-directory"):
        assert where in text, (where, text)
