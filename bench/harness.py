"""The harness every benchmark shares: samples and their medians, a launcher that starts measured processes
from a small early process, round-robin repeats, the plain-text tables (the baseline ratio table among them),
the common options and the JSON output.

Used by bench/image.py, bench/package.py, bench/repo.py, bench/resolve.py and bench/reliability.py; each keeps
only what it measures and how it reports it.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import statistics
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# ================================================================= samples and medians


@dataclass
class Sample:
    """One run of one operation."""

    seconds: float               # wall time of the operation
    cpu: float                   # user+sys CPU of the operation (and every process it waited for)
    peak_kib: int = 0            # peak RSS (the measured process, or the largest process of a pipeline)
    sys: float = math.nan        # of the CPU, the system (kernel) part, where measured
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON (``sys`` only where it was measured)."""
        out = asdict(self)
        if self.sys != self.sys:
            del out["sys"]
        return out


@dataclass
class Result:
    """The samples of one operation and their medians (a benchmark subclasses it for its own JSON)."""

    name: str
    samples: list[Sample] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return statistics.median(s.seconds for s in self.samples)

    @property
    def cpu(self) -> float:
        return statistics.median(s.cpu for s in self.samples)

    @property
    def sys(self) -> float:
        return statistics.median(s.sys for s in self.samples)

    @property
    def peak_mib(self) -> float:
        return max(s.peak_kib for s in self.samples) / 1024

    @property
    def import_mib(self) -> float:
        return float(max(s.extra.get("import_kib", 0) for s in self.samples)) / 1024

    def median_extra(self, key: str) -> float:
        return statistics.median(float(s.extra[key]) for s in self.samples)


def measure(ops: Mapping[str, Callable[[], Sample]], repeat: int, *, result: type[Result] = Result,
            note: Callable[[Sample], str] = lambda s: "") -> dict[str, Any]:
    """Every op ``repeat`` times, round-robin (drift of the machine hits all ops alike); one progress line
    per run (``note`` adds to it)."""
    results = {name: result(name) for name in ops}
    for r in range(repeat):
        for name, fn in ops.items():
            results[name].samples.append(fn())
            last = results[name].samples[-1]
            print(f"  [{r + 1}/{repeat}] {name:<34} {last.seconds:8.3f} s{note(last)}", flush=True)
    return results


def rounded(x: float, digits: int) -> float | None:
    """``x`` rounded; NaN (not measured) becomes None (JSON null)."""
    return None if x != x else round(x, digits)


# ================================================================= the launcher

# Measured processes are forked by a small launcher started first, never by the benchmark process: on Linux
# execve() keeps the pre-exec high-water RSS in the new program's ru_maxrss, and subprocess uses vfork(), so
# the pre-exec memory is the *parent's*. A child started with subprocess from a 300 MB parent reports
# >= 300 MB even through RUSAGE_SELF. fork() from a small launcher resets that, leaving a floor of the
# launcher's own RSS (see bench/README.md).
LAUNCHER = r"""
import json, os, sys, time
for line in sys.stdin:
    req = json.loads(line)
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.dup2(os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 1)
            if req["stderr"]:
                os.dup2(os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 2)
            os.execvpe(req["argv"][0], req["argv"], req["env"])
        finally:
            os._exit(127)
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    print(json.dumps({"rc": os.waitstatus_to_exitcode(status), "wall": wall, "cpu": ru.ru_utime + ru.ru_stime,
                      "maxrss": ru.ru_maxrss}), flush=True)
"""


class Launcher:
    """Runs commands from a small, early process; reports wall, CPU and peak RSS from wait4() (which covers
    the command and every process it waited for, e.g. all stages of a shell pipeline). With
    ``capture_stderr`` the commands' stderr is kept for the message of a failure; otherwise it is ours."""

    def __init__(self, scratch: Path, *, capture_stderr: bool = True) -> None:
        self.scratch, self.capture_stderr = scratch, capture_stderr
        self.proc = subprocess.Popen([sys.executable, "-S", "-I", "-c", LAUNCHER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def run(self, argv: Sequence[str], env: dict[str, str], what: str = "") -> tuple[dict[str, Any], str]:
        """(wait4's figures: rc, wall, cpu, maxrss; the command's stdout). A failure ends the benchmark
        with the command's stderr."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        out, err = self.scratch / "launcher.out", self.scratch / "launcher.err"
        self.proc.stdin.write(json.dumps({"argv": list(argv), "env": env, "stdout": str(out),
                                          "stderr": str(err) if self.capture_stderr else ""}) + "\n")
        self.proc.stdin.flush()
        res: dict[str, Any] = json.loads(self.proc.stdout.readline())
        text = out.read_text()
        errors = err.read_text(errors="replace") if self.capture_stderr else ""
        out.unlink()
        err.unlink(missing_ok=True)
        if res["rc"]:
            raise SystemExit(f"bench: {what or 'command'} failed (exit {res['rc']}):\n{errors.strip()[-3000:]}\n"
                             f"command: {shlex.join(argv)[:500]}")
        return res, text

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait()


# ================================================================= reporting

def table(rows: Sequence[Sequence[str]], header: Sequence[str], left: int = 1) -> str:
    """Plain text table: the first ``left`` columns left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def fmt(r: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) if i < left else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
    return "\n".join([fmt(header), "  ".join("-" * w for w in widths), *(fmt(r) for r in rows)])


def ratio_table(ratios: Mapping[str, float], digits: int = 2) -> str:
    """The ratios of ours to the baseline (``build / A (wall)  1.23x``)."""
    return table([[k, f"{v:.{digits}f}x"] for k, v in ratios.items()], ["ratio", "value"])


def fs_of(path: Path) -> str:
    """File system type of ``path`` (from /proc/mounts; the longest matching mount point)."""
    best, fstype = "", "?"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            _, mnt, typ, *_ = line.split()
            if str(path.resolve()).startswith(mnt.rstrip("/") + "/") and len(mnt) >= len(best):
                best, fstype = mnt, typ
    except OSError:
        pass
    return f"{fstype} ({path.parent})"


# ================================================================= options and JSON

def parser(doc: str | None, *, raw: bool = False) -> argparse.ArgumentParser:
    """The parser of a benchmark: its description is the module docstring (the first paragraph, or all of
    it with ``raw``)."""
    if raw:
        return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    return argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])


def add_repeat(ap: argparse.ArgumentParser, unit: str = "runs") -> None:
    ap.add_argument("--repeat", type=int, default=3, help=f"{unit} per measurement; the median is reported")


def add_json(ap: argparse.ArgumentParser, help: str = "also write the numbers to this JSON file") -> None:
    ap.add_argument("--json", type=Path, help=help)


def add_tmpdir(ap: argparse.ArgumentParser, help: str = "where the temporary folder goes (default $TMPDIR or /tmp)",
               ) -> None:
    ap.add_argument("--tmpdir", type=Path, default=None, help=help)


def write_json(path: Path | None, doc: object, *, indent: int = 2, say: bool = True) -> None:
    """``doc`` as JSON into ``path`` (when given), and a line saying so."""
    if path is None:
        return
    path.write_text(json.dumps(doc, indent=indent) + "\n")
    if say:
        print(f"\nwrote {path}")
