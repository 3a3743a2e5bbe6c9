"""Boot a kernel in QEMU (software emulation) and match console markers in order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from composer.arch import Arch
from composer.boot.machine import match_in_order
from composer.errors import ToolError
from composer.run import run


@dataclass(frozen=True, slots=True, kw_only=True)
class BootResult:
    log: str
    returncode: int
    missing: tuple[str, ...]   # expected lines not seen (in order)

    @property
    def passed(self) -> bool:
        return not self.missing and self.returncode == 0

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log.splitlines()[-n:])


def direct_kernel_command(arch: Arch, kernel: Path, initrd: Path, append: str, *, memory: str = "512M") -> list[str]:
    return [arch.qemu, *arch.qemu_machine, "-m", memory, "-display", "none", "-monitor", "none",
            "-serial", "stdio", "-no-reboot", "-kernel", str(kernel), "-initrd", str(initrd),
            "-append", f"console={arch.console} {append}".strip()]


def boot(cmd: Sequence[str], expected: Sequence[str], *, timeout: float = 300) -> BootResult:
    try:
        result = run(cmd, check=False, timeout=timeout)
    except ToolError as exc:
        if "did not finish" in exc.message:
            return BootResult(log="", returncode=-1, missing=tuple(expected))
        raise
    log = result.stdout.decode(errors="replace")
    return BootResult(log=log, returncode=result.returncode, missing=match_in_order(log.splitlines(), expected))
