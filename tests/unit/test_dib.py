"""The pure parts of the dib output (composer.image.dib.plan, .tarfix, the host check): options, elements, DIB's
command line and environment, the block-device configuration, the sudo stand-in, the tar rewrite."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from composer.errors import UserError
from composer.image.dib import plan, tarfix
from composer.image.outputs import OUTPUT_TYPES
from composer.image.types.dib import HostFacts, host_problem

GUIDS = {k: f"00000000-0000-5000-8000-00000000000{i}" for i, k in enumerate(("disk", "esp", "root", "root-fs"))}


def job(**over: object) -> plan.DibJob:
    fields: dict[str, object] = dict(name="dib", dib_arch="amd64", formats=("qcow2", "vmdk"), elements=(),
                                     root_tar=Path("/s/root.tar"), esp_image=Path("/s/esp.fat"), esp_mib=19,
                                     image_mib=200, root_type="4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
                                     guids=GUIDS, epoch=1700000000)
    fields.update(over)
    return plan.DibJob(**fields)  # type: ignore[arg-type]


def problems(options: object) -> list[str]:
    return [f"{'.'.join(map(str, p))}: {m}" for p, m, _ in OUTPUT_TYPES["dib"].option_problems(options)]


def test_formats_and_elements_are_validated_by_the_row() -> None:
    assert problems({"formats": ["qcow2", "vmdk", "vpc", "raw", "tar"], "elements": ["manifests"]}) == []
    assert problems({"formats": ["vhd"]})[0].startswith("formats.0: 'vhd' is not one of")
    assert problems({"formats": []}) and problems({"formats": ["qcow2", "qcow2"]})
    assert problems({"elements": ["../x"]})[0].startswith("elements.0:")
    assert problems({"elements": [f"e{i}" for i in range(plan.MAX_ELEMENTS + 1)]})
    assert problems({"filesystem": "ext4"}) == ["filesystem: output type 'dib' has no option 'filesystem'"]


def test_refused_elements_are_named_with_their_reasons_at_once() -> None:
    with pytest.raises(UserError) as info:
        plan.elements_of({"elements": ["manifests", "vm", "base"]}, "output 'dib'")
    msg = info.value.message
    assert msg.startswith("output 'dib': DIB elements refused: 'vm': ") and "'base': " in msg
    assert "manifests" not in msg
    assert plan.elements_of({"elements": ["manifests"]}, "x") == ("manifests",)
    assert plan.elements_of({}, "x") == ()


def test_elements_running_inside_a_root_without_bash_are_refused() -> None:
    phases = {"vcomp-root": frozenset(), "growroot": frozenset({"post-install.d", "install.d"})}
    err = plan.in_root_problem(phases, has_bash=False, where="output 'dib'")
    assert err is not None
    assert err.message.endswith("no /bin/bash: growroot (install.d, post-install.d)")
    assert plan.in_root_problem(phases, has_bash=True, where="x") is None
    assert plan.in_root_problem({"manifests": frozenset()}, has_bash=False, where="x") is None


def test_the_bootable_file_is_the_first_disk_format() -> None:
    assert plan.bootable_format(("tar", "vmdk", "qcow2")) == "qcow2"
    assert plan.bootable_format(("vpc", "raw")) == "raw"
    assert plan.bootable_format(("tar",)) == ""


def test_sizes() -> None:
    assert plan.esp_mib(1) == 1 and plan.esp_mib(plan.MIB) == 1 and plan.esp_mib(plan.MIB + 1) == 2
    size = plan.image_mib(16 * plan.MIB, 19)
    assert size % 4 == 0 and size >= 20 + 2 * plan.JOURNAL_MIB + 19 + 2


def test_command_line_has_no_base_element_and_vcomp_root_first() -> None:
    argv = plan.command("/venv/bin/disk-image-create", job(elements=("manifests",)), Path("/s/out/dib"))
    assert argv == ["/venv/bin/disk-image-create", "-n", "-a", "amd64", "--image-size", "0.1953", "-t", "qcow2,vmdk",
                    "--no-tmpfs", "-o", "/s/out/dib", "vcomp-root", "manifests"]


def test_environment_is_complete_and_sudo_is_on_dibs_path_only() -> None:
    env = plan.environment(job(), scratch=Path("/s"), python="/venv/bin/python", python_path=[Path("/s/site"),
                           Path("/src")], elements_path=[Path("/s/elements")], host_path="/usr/sbin:/usr/bin")
    assert env["PATH"] == "/s/bin:/usr/sbin:/usr/bin"
    assert env["HOME"] == "/s/home" and env["TMPDIR"] == "/s/tmp"
    assert env["PYTHONPATH"] == "/s/site:/src" and env["ELEMENTS_PATH"] == "/s/elements"
    assert env["DIB_BLOCK_DEVICE_CONFIG"] == "file:///s/block-device.yaml"
    assert env["VCOMP_ROOT_TAR"] == "/s/root.tar" and env["VCOMP_ESP"] == "/s/esp.fat"
    assert env["SOURCE_DATE_EPOCH"] == env["E2FSPROGS_FAKE_TIME"] == "1700000000"
    assert not any("proxy" in k.lower() for k in env)


def test_block_device_config_is_vcomps_gpt_through_the_partx_plugin() -> None:
    config = yaml.safe_load(plan.block_device_yaml(job()))
    assert config[0] == {"local_loop": {"name": "image0"}}
    part = config[1][plan.PLUGIN]
    assert part["label"] == "gpt" and part["disk-guid"] == GUIDS["disk"]
    assert part["ext4-times"] == {"partition": "root", "epoch": 1700000000}
    esp, root = part["partitions"]
    assert (esp["name"], esp["size"], esp["guid"], "mkfs" in esp) == ("ESP", "19MiB", GUIDS["esp"], False)
    assert root["size"] == "100%" and root["mkfs"]["type"] == "ext4" and root["mkfs"]["uuid"] == GUIDS["root-fs"]
    assert f"hash_seed={GUIDS['root-fs']}" in root["mkfs"]["opts"]
    assert "lazy_itable_init=0,lazy_journal_init=0" in root["mkfs"]["opts"]
    assert root["mkfs"]["mount"]["mount_point"] == "/"
    assert plan.ENTRY_POINTS.splitlines() == ["[diskimage_builder.block_device.plugin]",
                                              "vcomp_partitioning = composer.image.dib.partx:PartxPartitioning"]


def test_the_element_provides_the_operating_system_and_unpacks_the_root() -> None:
    files = plan.element_files()
    assert files["element-provides"][0] == "operating-system\n"
    text, mode = files["root.d/10-vcomp-root"]
    assert mode == 0o755 and "--numeric-owner --xattrs" in text and '"$VCOMP_ROOT_TAR"' in text
    assert '"${IMAGE_BLOCK_DEVICE}p1"' in files["pre-finalise.d/10-vcomp-esp"][0]
    assert not any(p.startswith(plan.IN_ROOT_PHASES) for p in files)  # nothing of vcomp's runs inside the root


def test_the_sudo_stand_in_drops_sudos_options(tmp_path: Path) -> None:
    sudo = tmp_path / "sudo"
    sudo.write_text(plan.SUDO)
    for argv in (["-E", "echo", "a b"], ["-E", "--preserve-env=PATH", "-u", "root", "echo", "a b"],
                 ["--", "echo", "a b"], ["echo", "a b"]):
        out = subprocess.run(["sh", str(sudo), *argv], capture_output=True, text=True, check=True).stdout
        assert out == "a b\n", argv


@pytest.mark.parametrize(("facts", "start"), [
    (HostFacts(dib="", root=True, loop=True), "output 'd' (dib) needs diskimage-builder"),
    (HostFacts(dib="/x", root=False, loop=True), "output 'd' (dib) needs root"),
    (HostFacts(dib="/x", root=True, loop=False), "output 'd' (dib) needs loop devices"),
])
def test_a_host_without_what_dib_needs_is_one_line(facts: HostFacts, start: str) -> None:
    err = host_problem(facts, "d")
    assert err is not None and err.message.startswith(start) and "\n" not in err.message and err.hint
    assert host_problem(HostFacts(dib="/x", root=True, loop=True), "d") is None


def _dib_like_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        def add(name: str, kind: bytes = tarfile.DIRTYPE, data: bytes = b"", mtime: int = 1800000000) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mtime, info.size = kind, mtime, len(data)
            info.pax_headers = {"atime": "1800000001.5", "ctime": "1800000002.25", "SCHILY.xattr.user.a": "b"}
            tar.addfile(info, io.BytesIO(data) if data else None)
        add("./")
        add("./dev")
        add("./dev/console", tarfile.CHRTYPE)
        add("./dev/loop0", tarfile.BLKTYPE)
        add("./dev/pts")
        add("./etc")
        add("./etc/hostname", tarfile.REGTYPE, b"dib\n", mtime=1600000000)
    return buf.getvalue()


def test_dibs_tar_loses_the_hosts_dev_and_the_build_times() -> None:
    out = io.BytesIO()
    dropped = tarfix.normalise(io.BytesIO(_dib_like_tar()), out, dev=tarfix.root_dev_entries(["console"]),
                               epoch=1700000000)
    assert dropped == 2
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == [".", "./dev", "./dev/console", "./etc", "./etc/hostname"]
        assert [m.mtime for m in members] == [1700000000] * 4 + [1600000000]
        assert all(set(m.pax_headers) == {"SCHILY.xattr.user.a"} for m in members)
        assert tar.extractfile("./etc/hostname").read() == b"dib\n"  # type: ignore[union-attr]
    again = io.BytesIO()
    tarfix.normalise(io.BytesIO(_dib_like_tar()), again, dev=tarfix.root_dev_entries(["console"]), epoch=1700000000)
    assert again.getvalue() == out.getvalue()


def test_the_partx_plugin_writes_the_configured_gpt_with_sfdisk(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The plugin's table on an image file (no loop device: sfdisk writes files too), read back by sfdisk."""
    pytest.importorskip("diskimage_builder", reason="the [dib] extra is not installed (pip install '.[dib]')")
    import shutil

    if shutil.which("sfdisk") is None:
        pytest.skip("sfdisk (fdisk) is not installed")
    from composer.image.dib import partx

    def unprivileged(cmd: list[str]) -> str:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    monkeypatch.setattr(partx, "exec_sudo", unprivileged)
    config = yaml.safe_load(plan.block_device_yaml(job()))[1][plan.PLUGIN]
    for part in config["partitions"]:
        part["base"] = "image0"  # what DIB's config loader adds to each partition node
    state: dict[str, object] = {"blockdev": {}}
    plugin = partx.PartxPartitioning(config, {}, state)
    image = tmp_path / "disk.raw"
    image.write_bytes(b"")
    with image.open("r+b") as f:
        f.truncate(64 * plan.MIB)
    plugin.device_path, plugin.disk_size = str(image), 64 * plan.MIB
    plugin._create_gpt()
    table = json.loads(subprocess.run(["sfdisk", "-J", str(image)], capture_output=True, check=True).stdout)
    table = table["partitiontable"]
    assert table["label"] == "gpt" and table["id"].lower() == GUIDS["disk"]
    esp, root = table["partitions"]
    assert (esp["start"], esp["size"], esp["uuid"].lower(), esp["name"]) == (2048, 19 * 2048, GUIDS["esp"], "ESP")
    assert root["start"] == 2048 + 19 * 2048 and root["uuid"].lower() == GUIDS["root"]
    assert root["type"] == "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
    assert state["blockdev"] == {"ESP": {"device": f"{image}p1"}, "root": {"device": f"{image}p2"}}
    first = image.read_bytes()
    plugin._create_gpt()
    assert image.read_bytes() == first  # the same table, byte for byte


def test_the_cache_key_of_a_dib_output_follows_diskimage_builders_version(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    from composer.compose.seed import output_key
    from composer.image.workshop import OutputJob
    t = OutputJob(name="dib", type="dib", options={"formats": ["qcow2"]}, firmware=("uefi",))
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "3.43.0")
    first = output_key("seed", t)
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "3.44.0")
    assert output_key("seed", t) != first


def test_bash_is_looked_for_inside_the_root_never_on_the_host(tmp_path: Path) -> None:
    import os

    from composer.image.types.dib import _has_bash
    merged = tmp_path / "merged"
    (merged / "usr" / "bin").mkdir(parents=True)
    os.symlink("usr/bin", merged / "bin")
    assert not _has_bash(merged)
    (merged / "usr" / "bin" / "bash").write_text("")
    assert _has_bash(merged)
    absolute = tmp_path / "absolute"
    absolute.mkdir()
    os.symlink("/usr/bin", absolute / "bin")   # the host's /usr/bin/bash must not count
    assert not _has_bash(absolute)


DUMPE2FS = """Inode count:              24
Inodes per group:         8
Group 0: (Blocks 1-8192) csum 0xf9c7 [ITABLE_ZEROED]
  Free inodes: 4, 7-8
Group 1: (Blocks 8193-16384) csum 0x9c4d [INODE_UNINIT, ITABLE_ZEROED]
  Free inodes: 9-16
Group 2: (Blocks 16385-24576) csum 0x9c4d
  Free inodes: 17-20, 22
"""


def test_the_inodes_in_use_are_every_groups_inodes_but_its_free_ones() -> None:
    assert plan.used_inodes(DUMPE2FS) == [1, 2, 3, 5, 6, 21, 23, 24]


def test_the_times_script_sets_every_inodes_times_and_the_superblocks() -> None:
    lines = plan.times_script([2, 11], 1700000000).splitlines()
    assert lines[:2] == ["sif <2> atime 1700000000", "sif <2> atime_extra 0"]
    assert "sif <11> crtime 1700000000" in lines and len(lines) == 2 * 8 + 3
    assert lines[-3:] == ["ssv mtime 1700000000", "ssv wtime 1700000000", "ssv kbytes_written 0"]
    assert not any("generation" in line for line in lines)  # it seeds the directory blocks' checksums
