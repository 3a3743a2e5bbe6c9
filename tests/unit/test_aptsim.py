"""composer.package.aptsim: apt's answer parsed from its output, and real apt on a tiny local Packages file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from composer.arch import get_arch
from composer.errors import UserError
from composer.package.aptsim import AptSimulator, parse_simulation, release_text

OK = """Reading package lists...
Building dependency tree...
The following NEW packages will be installed:
  libc6 nginx
Inst gcc-12-base (12.2.0-14+deb12u1 Debian:12.15/oldstable [amd64])
Inst libgcc-s1 (12.2.0-14+deb12u1 Debian:12.15/oldstable [amd64]) []
Inst zlib1g (1:1.2.13.dfsg-1 Debian:12.15/oldstable [amd64])
Inst debconf (1.5.82 Debian:12.15/oldstable [all])
Inst bash [5.2.15-2] (5.2.15-2+b13 Debian:12.15/oldstable [amd64])
Inst local (1.0-1 localhost [amd64])
Conf gcc-12-base (12.2.0-14+deb12u1 Debian:12.15/oldstable [amd64])
"""

BROKEN = """Reading package lists...
Building dependency tree...
Some packages could not be installed. This may mean that you have
The following packages have unmet dependencies:
 exim4-config : Conflicts: postfix but 3.7.11-0+deb12u1 is to be installed
 postfix : Conflicts: mail-transport-agent
E: Unable to correct problems, you have held broken packages.
"""

VIRTUAL = """Reading package lists...
Building dependency tree...
Package mail-transport-agent is a virtual package provided by:
  ssmtp 2.64-11
  nullmailer 1:2.2-4
  exim4-daemon-light 4.96-15+deb12u10

E: Package 'mail-transport-agent' has no installation candidate
"""


def test_inst_lines_give_name_version_arch_sorted() -> None:
    answer = parse_simulation(("nginx",), 0, OK)
    assert answer.ok and answer.message == ""
    assert [(i.name, i.version, i.arch) for i in answer.installed] == [
        ("bash", "5.2.15-2+b13", "amd64"), ("debconf", "1.5.82", "all"), ("gcc-12-base", "12.2.0-14+deb12u1", "amd64"),
        ("libgcc-s1", "12.2.0-14+deb12u1", "amd64"), ("local", "1.0-1", "amd64"),
        ("zlib1g", "1:1.2.13.dfsg-1", "amd64")]
    assert answer.versions()["zlib1g"] == "1:1.2.13.dfsg-1"


def test_a_failure_keeps_apts_explanation_without_progress_lines() -> None:
    answer = parse_simulation(("postfix", "exim4-daemon-light"), 100, BROKEN)
    assert not answer.ok and answer.installed == ()
    assert "postfix : Conflicts: mail-transport-agent" in answer.message
    assert answer.message.splitlines()[-1].startswith("E: Unable to correct problems")
    assert "Reading package lists" not in answer.message


def test_a_virtual_request_lists_its_providers() -> None:
    answer = parse_simulation(("mail-transport-agent",), 100, VIRTUAL)
    assert answer.providers == ("ssmtp", "nullmailer", "exim4-daemon-light")
    assert "has no installation candidate" in answer.message


def test_release_names_the_packages_file_by_size_and_hash() -> None:
    text = release_text(b"Package: a\n")
    assert text.endswith(" 11 Packages\n") and "SHA256:" in text


TINY = """Package: app
Version: 1.0-1
Architecture: amd64
Filename: pool/app_1.0-1.deb
Size: 100
Depends: zz-first | aa-second, libfoo (>= 2~)

Package: zz-first
Version: 1
Architecture: all
Filename: pool/zz-first_1.deb
Size: 100

Package: aa-second
Version: 1
Architecture: all
Filename: pool/aa-second_1.deb
Size: 100

Package: libfoo
Version: 1:2.0-1
Architecture: amd64
Filename: pool/libfoo_1%3a2.0-1.deb
Size: 100

Package: libfoo-old
Version: 1.0
Architecture: amd64
Filename: pool/libfoo-old_1.0.deb
Size: 100
Provides: libfoo (= 1.0)

Package: mta-a
Version: 1.0
Architecture: amd64
Filename: pool/mta-a_1.0.deb
Size: 100
Provides: mta
Conflicts: mta

Package: mta-b
Version: 2.0
Architecture: amd64
Filename: pool/mta-b_2.0.deb
Size: 100
Provides: mta
Conflicts: mta
"""

needs_apt = pytest.mark.skipif(shutil.which("apt-get") is None, reason="apt-get is not installed on this machine")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> AptSimulator:
    return AptSimulator.for_packages(TINY.encode(), tmp_path_factory.mktemp("apt") / "state", get_arch("x86_64"))


@needs_apt
def test_apt_on_a_local_file_takes_the_first_alternative_and_the_newest(tiny: AptSimulator) -> None:
    answer = tiny.install(("app",))
    assert answer.ok, answer.message
    assert answer.versions() == {"app": "1.0-1", "zz-first": "1", "libfoo": "1:2.0-1"}
    assert {i.name: i.arch for i in answer.installed}["zz-first"] == "all"


@needs_apt
def test_apt_on_a_local_file_refuses_a_virtual_name_with_two_providers(tiny: AptSimulator) -> None:
    answer = tiny.install(("mta",))
    assert answer.exit_code == 100
    assert sorted(answer.providers) == ["mta-a", "mta-b"]


@needs_apt
def test_apt_on_a_local_file_fails_on_a_conflict(tiny: AptSimulator) -> None:
    answer = tiny.install(("mta-a", "mta-b"))
    assert answer.exit_code == 100 and "Conflicts: mta" in answer.message


@needs_apt
def test_apt_state_is_private(tiny: AptSimulator) -> None:
    command = " ".join(tiny.command(("app",)))
    for option in ("Dir::State::status=", "Dir::State=", "Dir::Etc::Parts=", "Dir::Etc::SourceList=",
                   "APT::Install-Recommends=false", "--no-install-recommends", "-s"):
        assert option in command, option
    status = next(a for a in tiny.command(("app",)) if a.startswith("Dir::State::status="))
    assert Path(status.split("=", 1)[1]).read_bytes() == b""


def test_no_names_is_a_user_error() -> None:
    sim = AptSimulator(opts=[], arch=get_arch("x86_64"))
    with pytest.raises(UserError, match="no package names"):
        sim.install(())
