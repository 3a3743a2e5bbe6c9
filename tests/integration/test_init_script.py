"""The init recipe's shell script (recipes/init/files/usr/sbin/init) and the init/base-files packages.

The real test of init is a QEMU boot. These fast tests check what can be checked on the host:
- the syntax, under dash and (when the host has it) busybox sh;
- the script's logic, in its dry-run mode (VCOMP_INIT_DRYRUN=1, VCOMP_INIT_ROOT=a fake root).
  In that mode it reads its config files below the fake root and prints the commands that would
  change the system instead of running them. Stubs earlier on PATH record any such command that
  runs anyway, so a broken dry run fails the test and does not touch the host;
- the packages the real builder makes from the two recipes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from composer.package.archive import read_header
from composer.package.build import build
from composer.package.manifest import Entry
from composer.trust.keys import SigningKey

REPO = Path(__file__).resolve().parents[2]
INIT_RECIPE = REPO / "recipes" / "init"
BASE_RECIPE = REPO / "recipes" / "base-files"
INIT = INIT_RECIPE / "files" / "usr" / "sbin" / "init"
DHCP_SCRIPT = INIT_RECIPE / "files" / "usr" / "share" / "udhcpc" / "default.script"
ROOTFS_CHECK = INIT_RECIPE / "files" / "etc" / "veridian" / "checks.d" / "10-rootfs"
OS_RELEASE = BASE_RECIPE / "files" / "etc" / "os-release"
KREL = os.uname().release
MODDIR = f"/lib/modules/{KREL}"

# Commands that change the system: in a dry run, init must print them and never run them.
DANGEROUS = ("mount", "umount", "insmod", "modprobe", "ip", "udhcpc", "switch_root", "poweroff", "reboot",
             "hostname", "sync", "setsid", "cttyhack", "findfs")
BUSYBOX = shutil.which("busybox")
SHELLS = [
    pytest.param(["/bin/sh"], id="dash"),
    pytest.param([BUSYBOX or "busybox", "sh"], id="busybox-sh",
                 marks=pytest.mark.skipif(BUSYBOX is None, reason="busybox is not installed on this host")),
]


# --------------------------------------------------------------------------- helpers

@dataclass
class Boot:
    returncode: int
    stdout: str
    stderr: str
    stub_calls: list[str]

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    def markers(self, prefix: str = "VCOMP-") -> list[str]:
        """Marker lines (they start a line; detail lines are indented), dry-run commands left out."""
        return [ln for ln in self.lines if ln.startswith(prefix) and not ln.startswith("VCOMP-DRYRUN:")]

    @property
    def commands(self) -> list[str]:
        return [ln.removeprefix("VCOMP-DRYRUN: ") for ln in self.lines if ln.startswith("VCOMP-DRYRUN: ")]


class FakeRoot:
    """A directory that stands for / in a dry run."""

    def __init__(self, path: Path, cmdline: str = "console=ttyS0") -> None:
        self.path = path
        self.write("proc/cmdline", cmdline + "\n")
        self.write("etc/os-release", OS_RELEASE.read_text())
        self.write("etc/hostname", "veridian\n")
        (path / "sys" / "class" / "net" / "lo").mkdir(parents=True)
        (path / "etc" / "veridian").mkdir(parents=True, exist_ok=True)

    def write(self, rel: str, text: str, mode: int = 0o644) -> Path:
        p = self.path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        p.chmod(mode)
        return p

    def module(self, rel: str) -> None:
        self.write(f"{MODDIR.lstrip('/')}/{rel}", "")

    def check(self, name: str, body: str) -> None:
        self.write(f"etc/veridian/checks.d/{name}", "#!/bin/sh\n" + body, 0o755)

    def interface(self, name: str, lease: str | None = None) -> None:
        (self.path / "sys" / "class" / "net" / name).mkdir(parents=True)
        if lease:
            self.write(f"run/veridian/net/{name}", lease + "\n")


@pytest.fixture(params=SHELLS)
def shell(request: pytest.FixtureRequest) -> list[str]:
    return list(request.param)


@pytest.fixture
def root(tmp_path: Path) -> FakeRoot:
    return FakeRoot(tmp_path / "root")


@pytest.fixture
def stubs(tmp_path: Path) -> Path:
    """A bin directory with recording stubs of every dangerous command."""
    bindir = tmp_path / "stub-bin"
    bindir.mkdir()
    log = tmp_path / "stub-calls"
    for name in DANGEROUS:
        stub = bindir / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >>"{log}"\nexit 0\n')
        stub.chmod(0o755)
    return bindir


@pytest.fixture
def boot(shell: list[str], root: FakeRoot, stubs: Path) -> Callable[..., Boot]:
    def _boot(*, dryrun: bool = True, env: dict[str, str] | None = None, timeout: float = 60) -> Boot:
        full_env = {
            "PATH": f"{stubs}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "LANG": "C.UTF-8", "LC_ALL": "C",
        }
        if dryrun:
            full_env |= {"VCOMP_INIT_DRYRUN": "1", "VCOMP_INIT_ROOT": str(root.path)}
        full_env |= env or {}
        proc = subprocess.run([*shell, str(INIT)], env=full_env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, check=False)
        log = stubs.parent / "stub-calls"
        calls = log.read_text().splitlines() if log.exists() else []
        return Boot(returncode=proc.returncode, stdout=proc.stdout, stderr=proc.stderr, stub_calls=calls)
    return _boot


def assert_clean(b: Boot) -> None:
    assert b.returncode == 0, b.stdout + b.stderr
    assert b.stub_calls == [], f"the dry run ran real commands: {b.stub_calls}"


def in_order(lines: Sequence[str], wanted: Sequence[str]) -> bool:
    """True when ``wanted`` occurs in ``lines`` as a subsequence."""
    it = iter(lines)
    return all(any(line == w for line in it) for w in wanted)


# --------------------------------------------------------------------------- syntax

@pytest.mark.parametrize("script", [INIT, DHCP_SCRIPT, ROOTFS_CHECK], ids=lambda p: p.name)
def test_syntax_dash(script: Path) -> None:
    proc = subprocess.run(["/bin/sh", "-n", str(script)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(BUSYBOX is None, reason="busybox is not installed on this host")
@pytest.mark.parametrize("script", [INIT, DHCP_SCRIPT, ROOTFS_CHECK], ids=lambda p: p.name)
def test_syntax_busybox(script: Path) -> None:
    assert BUSYBOX is not None
    proc = subprocess.run([BUSYBOX, "sh", "-n", str(script)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_scripts_are_executable_and_posix() -> None:
    for script in (INIT, DHCP_SCRIPT, ROOTFS_CHECK):
        assert script.stat().st_mode & 0o111, f"{script} lost its exec bit"
        assert script.read_text().startswith("#!/bin/sh\n")


# --------------------------------------------------------------------------- dry runs

def test_mounts_hostname_and_started_marker(boot: Callable[..., Boot]) -> None:
    b = boot()
    assert_clean(b)
    for fs, where in [("proc", "/proc"), ("sysfs", "/sys"), ("devtmpfs", "/dev"), ("tmpfs", "/run"),
                      ("tmpfs", "/tmp")]:
        assert any(c.startswith(f"mount -t {fs} ") and c.endswith(f" {fs} {where}") for c in b.commands), where
    assert "hostname veridian" in b.commands
    version = next(ln.split("=", 1)[1].strip('"') for ln in OS_RELEASE.read_text().splitlines()
                   if ln.startswith("VERSION_ID="))
    started = f"VCOMP-BOOT: init started (veridian {version}, kernel {KREL}, arch {os.uname().machine})"
    assert b.markers()[0] == started
    # Nothing to do: no modules, no network, no checks; then the shell.
    assert b.markers()[1:] == ["VCOMP-NET: disabled (capability network not granted)",
                               "VCOMP-CHECKS: done pass=0 fail=0", "VCOMP-BOOT: ready",
                               "VCOMP-BOOT: starting shell"]
    assert b.commands[-1] == "sh"


def test_already_mounted_file_systems_are_left_alone(boot: Callable[..., Boot], root: FakeRoot) -> None:
    root.write("proc/mounts", "proc /proc proc rw 0 0\nsysfs /sys sysfs rw 0 0\n")
    b = boot()
    assert_clean(b)
    mounted = [c.split()[-1] for c in b.commands if c.startswith("mount -t ")]
    assert "/proc" not in mounted and "/sys" not in mounted
    assert {"/dev", "/run", "/tmp"} <= set(mounted)


def test_modules_loaded_in_listed_order(boot: Callable[..., Boot], root: FakeRoot) -> None:
    root.write("etc/veridian/modules.load", "\n".join([
        "# storage first",
        "kernel/drivers/virtio/virtio.ko",
        "",
        "   kernel/drivers/block/virtio_blk.ko   # the root disk",
        "kernel/fs/ext4/ext4.ko.zst",
        "kernel/drivers/net/virtio-net.ko napi_tx=1",
        "kernel/drivers/gone.ko",
        "kernel/drivers/builtin_thing.ko",
    ]))  # no newline at the end: the last line still counts
    for rel in ["kernel/drivers/virtio/virtio.ko", "kernel/drivers/block/virtio_blk.ko",
                "kernel/fs/ext4/ext4.ko.zst", "kernel/drivers/net/virtio-net.ko"]:
        root.module(rel)
    (root.path / "sys" / "module" / "builtin_thing").mkdir(parents=True)  # built in / already loaded
    b = boot()
    assert_clean(b)
    assert b.markers("VCOMP-MODULE:") == [
        "VCOMP-MODULE: ok virtio",
        "VCOMP-MODULE: ok virtio_blk",
        "VCOMP-MODULE: ok ext4",
        "VCOMP-MODULE: ok virtio-net",
        "VCOMP-MODULE: FAIL gone",
        "VCOMP-MODULE: ok builtin_thing",
    ]
    assert [c for c in b.commands if c.startswith("insmod")] == [
        f"insmod {MODDIR}/kernel/drivers/virtio/virtio.ko",
        f"insmod {MODDIR}/kernel/drivers/block/virtio_blk.ko",
        f"insmod {MODDIR}/kernel/fs/ext4/ext4.ko.zst",
        f"insmod {MODDIR}/kernel/drivers/net/virtio-net.ko napi_tx=1",
    ]
    fail_at = b.lines.index("VCOMP-MODULE: FAIL gone")
    assert b.lines[fail_at + 1] == f"    not found: {MODDIR}/kernel/drivers/gone.ko"
    # Modules come after the started marker and before the end of the boot.
    assert in_order(b.markers(), ["VCOMP-MODULE: ok virtio", "VCOMP-BOOT: ready"])
    assert b.markers()[0].startswith("VCOMP-BOOT: init started")


def test_stage2_skips_loaded_modules_and_does_not_switch_again(boot: Callable[..., Boot],
                                                               root: FakeRoot) -> None:
    root.write("proc/cmdline", "vcomp.root=/dev/vda vcomp.rootfstype=ext4\n")
    root.write("etc/veridian/modules.load", "kernel/a.ko\nkernel/b.ko\n")
    root.module("kernel/a.ko")
    root.module("kernel/b.ko")
    (root.path / "sys" / "module" / "a").mkdir(parents=True)  # loaded by the initramfs
    b = boot(env={"VCOMP_INIT_STAGE": "2"})
    assert_clean(b)
    assert "VCOMP-BOOT: stage 2 (running on the new root)" in b.markers()
    assert b.markers("VCOMP-MODULE:") == ["VCOMP-MODULE: ok b"]
    assert [c for c in b.commands if c.startswith("insmod")] == [f"insmod {MODDIR}/kernel/b.ko"]
    assert not any(m.startswith("VCOMP-BOOT: switching root") for m in b.markers())
    assert "VCOMP-BOOT: ready" in b.markers()


def test_network_disabled_without_the_capability(boot: Callable[..., Boot], root: FakeRoot) -> None:
    root.write("etc/veridian/capabilities", "# granted\nstorage\nnetwork-admin\n")
    root.interface("eth0", lease="10.0.2.15/24")
    b = boot()
    assert_clean(b)
    assert b.markers("VCOMP-NET:") == ["VCOMP-NET: disabled (capability network not granted)"]
    assert not any(c.startswith(("ip ", "udhcpc")) for c in b.commands)


def test_network_enabled(boot: Callable[..., Boot], root: FakeRoot) -> None:
    root.write("etc/veridian/capabilities", "storage\n  network  # granted by the image\n")
    root.interface("eth0", lease="10.0.2.15/24")
    root.interface("eth1")  # no lease: DHCP found no server
    b = boot()
    assert_clean(b)
    assert b.markers("VCOMP-NET:") == ["VCOMP-NET: eth0 up 10.0.2.15/24", "VCOMP-NET: eth1 FAIL"]
    net = [c for c in b.commands if c.startswith(("ip ", "udhcpc"))]
    assert net[0] == "ip link set lo up"
    script = "/usr/share/udhcpc/default.script"
    assert in_order(net, ["ip link set eth0 up", f"udhcpc -i eth0 -n -q -t 5 -s {script}",
                          "ip link set eth1 up", f"udhcpc -i eth1 -n -q -t 5 -s {script}"])
    assert net.count("ip link set lo up") == 1 and not any("-i lo " in c for c in net)
    assert in_order(b.markers(), ["VCOMP-NET: eth1 FAIL", "VCOMP-CHECKS: done pass=0 fail=0",
                                  "VCOMP-BOOT: ready"])


def test_network_granted_without_interfaces(boot: Callable[..., Boot], root: FakeRoot) -> None:
    root.write("etc/veridian/capabilities", "network\n")
    b = boot()
    assert_clean(b)
    assert b.markers("VCOMP-NET:") == ["VCOMP-NET: no interfaces besides lo"]


def test_checks_run_in_order_and_are_counted(boot: Callable[..., Boot], root: FakeRoot) -> None:
    root.write("proc/cmdline", "console=ttyS0 vcomp.checktimeout=1\n")
    order = root.path / "order"
    root.check("30-fails", f'echo 30 >>"{order}"\n' + "".join(f"echo line{i}\n" for i in range(15))
               + "echo oops >&2\nexit 3\n")
    root.check("10-passes", f'echo 10 >>"{order}"\necho fine\n')
    root.check("20-passes", f'echo 20 >>"{order}"\ntest -n "$VCOMP_INIT_ROOT"\n')
    root.check("40-hangs", f'echo 40 >>"{order}"\nsleep 30\n')
    root.write("etc/veridian/checks.d/50-not-executable", "#!/bin/sh\nexit 1\n", 0o644)
    b = boot()
    assert_clean(b)
    assert order.read_text().split() == ["10", "20", "30", "40"]
    checks = b.markers("VCOMP-CHECK")
    assert checks[:3] == ["VCOMP-CHECK: PASS 10-passes", "VCOMP-CHECK: PASS 20-passes",
                          "VCOMP-CHECK: FAIL 30-fails (exit 3)"]
    assert checks[3] in ("VCOMP-CHECK: FAIL 40-hangs (exit 124)", "VCOMP-CHECK: FAIL 40-hangs (exit 143)")
    assert checks[4:] == ["VCOMP-CHECK: SKIP 50-not-executable (not an executable file)",
                          "VCOMP-CHECKS: done pass=2 fail=2"]
    # The failing check's last 10 output lines follow its marker, indented.
    at = b.lines.index("VCOMP-CHECK: FAIL 30-fails (exit 3)")
    assert b.lines[at + 1:at + 11] == [f"    line{i}" for i in range(6, 15)] + ["    oops"]
    assert "    line5" not in b.lines
    # Passing checks print nothing; every check's output is kept in a log.
    assert "    fine" not in b.lines
    assert (root.path / "run" / "veridian" / "checks" / "10-passes.log").read_text() == "fine\n"
    assert in_order(b.markers(), ["VCOMP-CHECKS: done pass=2 fail=2", "VCOMP-BOOT: ready"])


def test_shipped_rootfs_check(boot: Callable[..., Boot], root: FakeRoot) -> None:
    check = root.write("etc/veridian/checks.d/10-rootfs", ROOTFS_CHECK.read_text(), 0o755)
    root.write("proc/mounts", "rootfs / rootfs rw 0 0\nproc /proc proc rw 0 0\n")
    b = boot()
    assert_clean(b)
    assert b.markers("VCOMP-CHECK") == ["VCOMP-CHECK: PASS 10-rootfs", "VCOMP-CHECKS: done pass=1 fail=0"]
    (root.path / "proc" / "mounts").write_text("proc /proc proc rw 0 0\n")
    b = boot()
    assert b.markers("VCOMP-CHECK") == ["VCOMP-CHECK: FAIL 10-rootfs (exit 1)",
                                        "VCOMP-CHECKS: done pass=0 fail=1"]
    assert "    / is not mounted (no / in /proc/mounts)" in b.lines
    assert check.exists()


def test_poweroff_requested_on_the_command_line(boot: Callable[..., Boot], root: FakeRoot) -> None:
    root.write("proc/cmdline", "console=ttyS0 quiet vcomp.poweroff=1\n")
    b = boot()
    assert_clean(b)
    assert b.markers()[-2:] == ["VCOMP-BOOT: ready", "VCOMP-BOOT: powering off"]
    assert b.commands[-2:] == ["sync", "poweroff -f"]
    assert "VCOMP-BOOT: starting shell" not in b.markers()


def test_poweroff_requested_by_file(boot: Callable[..., Boot], root: FakeRoot) -> None:
    root.write("etc/veridian/poweroff", "")
    b = boot()
    assert_clean(b)
    assert b.markers()[-1] == "VCOMP-BOOT: powering off"
    assert b.commands[-1] == "poweroff -f"


def test_no_poweroff_without_request(boot: Callable[..., Boot], root: FakeRoot) -> None:
    root.write("proc/cmdline", "console=ttyS0 vcomp.poweroff=0\n")
    b = boot()
    assert_clean(b)
    assert b.markers()[-2:] == ["VCOMP-BOOT: ready", "VCOMP-BOOT: starting shell"]
    assert "poweroff -f" not in b.commands


def test_switch_root(boot: Callable[..., Boot], root: FakeRoot) -> None:
    root.write("proc/cmdline", "console=ttyS0 vcomp.root=/dev/vda vcomp.rootfstype=erofs\n")
    root.write("dev/vda", "")
    root.write("etc/veridian/modules.load", "kernel/virtio_blk.ko\n")
    root.module("kernel/virtio_blk.ko")
    b = boot()
    assert_clean(b)
    assert b.markers()[-2:] == ["VCOMP-MODULE: ok virtio_blk", "VCOMP-BOOT: switching root to /dev/vda (erofs)"]
    tail = b.commands[b.commands.index("mount -t erofs -o ro /dev/vda /newroot"):]
    assert tail == ["mount -t erofs -o ro /dev/vda /newroot",
                    "mount --move /proc /newroot/proc", "mount --move /sys /newroot/sys",
                    "mount --move /dev /newroot/dev", "mount --move /run /newroot/run",
                    "umount /tmp", "switch_root /newroot /sbin/init"]


def test_switch_root_through_dm_verity(boot: Callable[..., Boot], root: FakeRoot) -> None:
    """vcomp.verity (docs/verified-boot.md): the root is mapped through dm-verity and the mapping is mounted."""
    digest, salt = "ab" * 32, "cd" * 32
    root.write("proc/cmdline", f"vcomp.root=/dev/vda2 vcomp.rootfstype=ext4 vcomp.verity=/dev/vda2,/dev/vda3,"
                               f"100,{digest},{salt}\n")
    root.write("dev/vda2", "")
    root.write("dev/vda3", "")
    b = boot()
    assert_clean(b)
    assert b.markers()[-2:] == ["VCOMP-BOOT: switching root to /dev/vda2 (ext4)",
                                f"VCOMP-BOOT: verity root /dev/vda2 (hash tree /dev/vda3, root hash {digest})"]
    table = f"0 800 verity 1 /dev/vda2 /dev/vda3 4096 4096 100 1 sha256 {digest} {salt}"
    start = b.commands.index(f"dmsetup create vroot --readonly --noudevsync --table {table}")
    assert b.commands[start + 1:start + 3] == ["dmsetup mknodes vroot", "mkdir -p /newroot"]
    assert "mount -t ext4 -o ro /dev/mapper/vroot /newroot" in b.commands


def test_a_verity_root_stays_read_only_in_stage_2(boot: Callable[..., Boot], root: FakeRoot) -> None:
    root.write("proc/cmdline", f"vcomp.root=/dev/vda2 vcomp.rootfstype=ext4 vcomp.verity=/dev/vda2,/dev/vda3,100,"
                               f"{'ab' * 32},{'cd' * 32}\n")
    b = boot(env={"VCOMP_INIT_STAGE": "2"})
    assert_clean(b)
    assert not any("remount" in c for c in b.commands) and "VCOMP-BOOT: ready" in b.markers()


def test_a_malformed_verity_word_is_a_boot_failure(boot: Callable[..., Boot], root: FakeRoot) -> None:
    root.write("proc/cmdline", "vcomp.root=/dev/vda2 vcomp.verity=/dev/vda2,/dev/vda3,many\n")
    root.write("dev/vda2", "")
    b = boot()
    assert "VCOMP-BOOT: FAIL cannot mount root /dev/vda2" in b.markers()
    assert not any(c.startswith("dmsetup") for c in b.commands)
    assert "VCOMP-BOOT: ready" not in b.markers()


def test_root_without_type_is_detected_by_mount(boot: Callable[..., Boot], root: FakeRoot) -> None:
    root.write("proc/cmdline", "vcomp.root=/dev/vda\n")
    root.write("dev/vda", "")
    b = boot()
    assert_clean(b)
    assert "VCOMP-BOOT: switching root to /dev/vda (auto)" in b.markers()
    assert "mount -o ro /dev/vda /newroot" in b.commands


def test_missing_root_device_is_the_emergency_path(boot: Callable[..., Boot], root: FakeRoot) -> None:
    root.write("proc/cmdline", "vcomp.root=/dev/sdz vcomp.rootwait=0 vcomp.poweroff=1\n")
    b = boot()
    assert_clean(b)
    assert b.markers()[-3:] == ["VCOMP-BOOT: switching root to /dev/sdz (auto)",
                                "VCOMP-BOOT: FAIL cannot mount root /dev/sdz",
                                "VCOMP-BOOT: powering off"]
    assert "    the device did not appear within 0 s" in b.lines
    assert b.commands[-2:] == ["sync", "poweroff -f"]
    assert "VCOMP-BOOT: ready" not in b.markers()
    assert not any(c.startswith(("switch_root", "mount --move")) for c in b.commands)


def test_root_switch_only_from_an_initramfs(boot: Callable[..., Boot], root: FakeRoot) -> None:
    root.write("proc/cmdline", "vcomp.root=/dev/vda\n")
    root.write("proc/mounts", "/dev/vda / ext4 ro 0 0\nproc /proc proc rw 0 0\n")
    root.write("dev/vda", "")
    b = boot()
    assert_clean(b)
    assert "VCOMP-BOOT: WARN vcomp.root=/dev/vda ignored: / is not an initramfs" in b.markers()
    assert not any(c.startswith("switch_root") for c in b.commands)
    assert "VCOMP-BOOT: ready" in b.markers()


def test_refuses_to_run_outside_pid1_without_dry_run(boot: Callable[..., Boot]) -> None:
    b = boot(dryrun=False, timeout=20)
    assert b.returncode == 1
    assert "not PID 1" in b.stderr
    assert b.stdout == "" and b.stub_calls == []


# --------------------------------------------------------------------------- packages
# dev_key (tests/conftest.py) is a real key made with composer.trust.keys.generate.

def _entries(recipe: Path, key: SigningKey, out: Path) -> tuple[dict[str, Entry], Path]:
    built = build(recipe, "x86_64", key, out, cache=out / "cache")
    header = read_header(built.path)
    assert header.manifest == built.manifest
    return {e.path: e for e in built.manifest.entries}, built.path


def test_init_package(dev_key: SigningKey, tmp_path: Path) -> None:
    entries, path = _entries(INIT_RECIPE, dev_key, tmp_path)
    assert path.name == "init-0.3.5-noarch.vpk"
    init = entries["usr/sbin/init"]
    assert (init.type, init.mode, init.role) == ("file", 0o755, "binary")
    assert (entries["init"].type, entries["init"].target) == ("symlink", "usr/sbin/init")
    assert not any(p == "sbin" or p.startswith("sbin/") for p in entries), "merged /usr: nothing under sbin/"
    assert entries["usr/share/udhcpc/default.script"].mode == 0o755
    check = entries["etc/veridian/checks.d/10-rootfs"]
    assert (check.mode, check.role) == (0o755, "config")
    assert not any(p.startswith("etc/veridian/") and p.endswith(("modules.load", "capabilities"))
                   for p in entries), "modules.load and capabilities belong to the image, not to init"
    meta = read_header(path).metadata
    assert meta.arch == "noarch"
    assert {d.name: d.to_value() for d in meta.dependencies} == {"busybox": "1.37", "base-files": "13"}
    assert (meta.capabilities_required, meta.capabilities_optional) == ((), ("network",))
    assert meta.security.context == "init_t"


def test_base_files_package(dev_key: SigningKey, tmp_path: Path) -> None:
    entries, path = _entries(BASE_RECIPE, dev_key, tmp_path / "a")
    assert path.name == "base-files-13.8.0-noarch.vpk"
    osr = entries["etc/os-release"]
    assert (osr.type, osr.mode, osr.role) == ("file", 0o644, "config")
    assert (entries["tmp"].type, entries["tmp"].mode) == ("dir", 0o1777)
    assert entries["var/tmp"].mode == 0o1777
    assert entries["root"].mode == 0o700
    assert (entries["etc/shadow"].mode, entries["etc/shadow"].role) == (0o640, "config")
    for d in ("proc", "sys", "dev", "run", "mnt", "var/log"):
        assert (entries[d].type, entries[d].mode) == ("dir", 0o755), d
    for f in ("passwd", "group", "hostname", "hosts", "fstab", "profile", "issue", "shells"):
        assert entries[f"etc/{f}"].role == "config", f
    assert entries["etc/resolv.conf"].target == "../run/resolv.conf"  # DHCP writes /run/resolv.conf
    for alias in ("bin", "sbin", "lib", "lib64"):  # merged /usr (docs/base-layout.md)
        assert (entries[alias].type, entries[alias].target) == ("symlink", f"usr/{alias}"), alias
        assert entries[f"usr/{alias}"].type == "dir", alias
    meta = read_header(path).metadata
    assert meta.dependencies == ()
    # os-release names the package's version; init prints it in its first marker.
    osr_text = OS_RELEASE.read_text()
    assert "ID=veridian\n" in osr_text
    assert f"VERSION_ID={meta.version}\n" in osr_text
    assert (BASE_RECIPE / "files" / "etc" / "passwd").read_text().startswith("root:x:0:0:root:/root:/bin/sh\n")
    # Reproducible: a second build is byte-identical.
    _, again = _entries(BASE_RECIPE, dev_key, tmp_path / "b")
    assert again.read_bytes() == path.read_bytes()


def test_package_tmpfiles_and_first_boot_actions_run_before_the_network(boot: Callable[..., Boot],
                                                                        root: FakeRoot) -> None:
    uid, gid = os.getuid(), os.getgid()
    (root.path / "var" / "lib" / "kept").mkdir(parents=True)
    (root.path / "var" / "lib" / "kept").chmod(0o700)
    root.write("etc/veridian/tmpfiles", "\n".join([
        "# generated by vcomp",
        "d 0755 0 0 /run/sshd",
        f"d 0700 {uid} {gid} /var/lib/kept",
        "f 0640 0 0 /run/motd hello there",
        "L - 0 0 /run/link /etc/os-release",
        "z 2755 0 5 /etc/hostname",
        "z 2755 0 5 /usr/bin/not-there",
        "x 0 0 0 /bad",
    ]) + "\n")
    root.write("etc/veridian/firstboot.d/machine-id", "#!/bin/sh\nexit 0\n", 0o755)
    root.write("etc/veridian/firstboot.d/notes", "not executable\n")
    b = boot()
    assert_clean(b)
    assert "mkdir -p /run/sshd" in b.commands and "chmod 0755 /run/sshd" in b.commands
    assert "chown 0:0 /run/sshd" in b.commands
    assert not any("/var/lib/kept" in c for c in b.commands), "mode and owner already right: nothing to do"
    assert b.commands[b.commands.index("chown 0:5 /etc/hostname") + 1] == "chmod 2755 /etc/hostname"
    assert not any("not-there" in c for c in b.commands)
    assert "write /run/motd" in b.commands and "ln -s /etc/os-release /run/link" in b.commands
    assert f"{root.path}/etc/veridian/firstboot.d/machine-id" in b.commands
    assert in_order(b.markers(), ["VCOMP-BOOT: WARN tmpfiles: cannot apply x /bad",
                                  "VCOMP-FIRSTBOOT: ok machine-id",
                                  "VCOMP-NET: disabled (capability network not granted)"])
    assert not any("notes" in m for m in b.markers())


# --------------------------------------------------------------------------- A/B slots (docs/updates/ab-slots.md)
# The markers of a good, a trial and a fallback boot, the rename that commits or fails a trial, the reboot after a
# failed health check, the update timer. The real thing: tests/integration/test_ab_update.py (QEMU, systemd-boot).

SLOT_CMDLINE = "console=ttyS0 vcomp.root=/dev/vda4 vcomp.rootfstype=ext4 vcomp.slot=b vcomp.esp=/dev/vda1"
LINUX = "run/efi/EFI/Linux"


def device(root: FakeRoot, *entries: str, health: dict[str, str] | None = None) -> None:
    root.write("proc/cmdline", SLOT_CMDLINE + "\n")
    root.write("dev/vda1", "")
    for name in entries:
        root.write(f"{LINUX}/{name}", "uki")
    for name, body in (health or {}).items():
        root.write(f"etc/veridian/health.d/{name}", "#!/bin/sh\n" + body + "\n", 0o755)


def stage2(boot: Callable[..., Boot]) -> Boot:
    return boot(env={"VCOMP_INIT_STAGE": "2"})


def test_a_good_slot_says_so_and_mounts_the_esp(boot: Callable[..., Boot], root: FakeRoot) -> None:
    device(root, "vcomp-1-a.efi", "vcomp-2-b.efi")
    b = stage2(boot)
    assert_clean(b)
    assert "VCOMP-UPDATE: running generation 2 slot b" in b.markers()
    assert "mount -t vfat -o rw,nosuid,nodev,noexec,flush /dev/vda1 /run/efi" in b.commands
    assert not any(c.startswith("mv ") for c in b.commands)


def test_a_fallback_names_the_generation_that_failed(boot: Callable[..., Boot], root: FakeRoot) -> None:
    device(root, "vcomp-3-a+0-1.efi", "vcomp-2-b.efi")
    b = stage2(boot)
    assert_clean(b)
    assert "VCOMP-UPDATE: running generation 2 slot b (fallback from 3)" in b.markers()


def test_a_trial_whose_checks_pass_is_committed(boot: Callable[..., Boot], root: FakeRoot) -> None:
    device(root, "vcomp-1-a.efi", "vcomp-2-b+2-1.efi", health={"ok": "exit 0"})
    b = stage2(boot)
    assert_clean(b)
    markers = b.markers()
    assert "VCOMP-UPDATE: trial boot of generation 2 slot b (tries left 2, done 1)" in markers
    assert "VCOMP-HEALTH: PASS ok" in markers
    assert "VCOMP-UPDATE: committed generation 2 slot b" in markers
    efi = root.path / LINUX
    assert f"mv {efi}/vcomp-2-b+2-1.efi {efi}/vcomp-2-b.efi" in b.commands
    assert "reboot -f" not in b.commands


def test_a_trial_whose_check_fails_is_marked_bad_and_reboots(boot: Callable[..., Boot], root: FakeRoot) -> None:
    device(root, "vcomp-2-a.efi", "vcomp-3-b+2-1.efi", health={"ok": "exit 0", "web": "echo down; exit 3"})
    b = stage2(boot)
    assert b.stub_calls == []
    markers = b.markers()
    assert "VCOMP-HEALTH: FAIL web (exit 3)" in markers
    assert "VCOMP-UPDATE: health failed (1 of 2 checks) for generation 3 slot b; falling back" in markers
    efi = root.path / LINUX
    assert f"mv {efi}/vcomp-3-b+2-1.efi {efi}/vcomp-3-b+0-1.efi" in b.commands
    assert b.commands[-1] == "reboot -f"
    assert "VCOMP-BOOT: ready" not in markers


def test_no_entry_and_no_esp_are_one_line_each(boot: Callable[..., Boot], root: FakeRoot) -> None:
    device(root, "vcomp-1-a.efi")
    b = stage2(boot)
    assert_clean(b)
    assert "VCOMP-UPDATE: FAIL slot b has no boot entry in /run/efi/EFI/Linux" in b.markers()
    root.write("proc/cmdline", "console=ttyS0 vcomp.slot=a\n")
    b = stage2(boot)
    assert "VCOMP-UPDATE: FAIL vcomp.slot=a without vcomp.esp: the slot's state is unknown" in b.markers()


def test_the_update_timer_runs_vpk_when_an_interval_is_set(boot: Callable[..., Boot], root: FakeRoot) -> None:
    device(root, "vcomp-1-a.efi", "vcomp-2-b.efi")
    root.write("etc/veridian/update.json", '{"channel":"stable","interval":600}\n')
    b = stage2(boot)
    assert_clean(b)
    assert "VCOMP-UPDATE: update timer every 600 s" in b.markers()
    assert "vpk update --reboot" in b.commands
    root.write("etc/veridian/update.json", '{"channel":"stable","interval":0}\n')
    assert "vpk update --reboot" not in stage2(boot).commands
