"""A plan as text: a Terraform-like table, GitHub-flavoured markdown, JSON and a CI build matrix. Pure: no I/O.

Every form shows the same three layers per profile (the profile diff, the packages per architecture with the
packages asked for apart from their dependencies, the outputs to rebuild), then the call-outs and the policy
violations, and ends with one summary line.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from composer.errors import EXIT_POLICY
from composer.gitops.plan import (
    AdvisoryChange,
    Callout,
    OutputChange,
    PackageChange,
    Plan,
    ProfileChange,
    ProfilePlan,
    matrix,
    summary,
)
from composer.gitops.policy import Violation

SYMBOLS = {"add": "+", "remove": "-"}          # every other action (change, upgrade, rebuild, ...) is "~"
ANSI = {"+": "32", "~": "33", "-": "31", "!": "35", "x": "1;31"}
UNITS = ("B", "KiB", "MiB", "GiB", "TiB")
NO_CHANGES = "No changes. The images match the desired state."
VERDICTS = {"no changes": "no changes", "changes": "changes to apply", "policy violation": "policy violations"}
MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")

Line = Callable[[str, str], str]               # (symbol, text) -> one rendered line


# ---------------------------------------------------------------- shared wording


def symbol(action: str) -> str:
    return SYMBOLS.get(action, "~")


def human_size(delta: int) -> str:
    """A signed size in binary units: ``+1.2 MiB``, ``-512 B``, ``0 B``."""
    if delta == 0:
        return "0 B"
    sign, value = ("+" if delta > 0 else "-"), float(abs(delta))
    unit = 0
    while value >= 1024 and unit < len(UNITS) - 1:
        value, unit = value / 1024, unit + 1
    number = f"{int(value)}" if unit == 0 else f"{value:.1f}"
    return f"{sign}{number} {UNITS[unit]}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def summary_line(plan: Plan) -> str:
    """Terraform's last line: what the plan does, or that there is nothing to do."""
    if plan.verdict == "no changes":
        return NO_CHANGES
    s = summary(plan)
    return (f"Plan: {_plural(s['packages_added'], 'package')} to add, {s['packages_changed']} to change, "
            f"{s['packages_removed']} to remove; {_plural(s['outputs_rebuilt'], 'output')} to rebuild; "
            f"{_plural(s['violations'], 'policy violation')}"
            + (f"; advisories: {s['advisories_introduced']} introduced, {s['advisories_fixed']} fixed"
               if s["advisories_introduced"] or s["advisories_fixed"] else "") + ".")


def advisory_text(a: AdvisoryChange) -> str:
    """``x86_64: nginx 1.26.3-3: DEBIAN-CVE-2026-1 (critical) fixed in 1.26.3-4: summary``."""
    fix = f" fixed in {', '.join(a.fixed)}" if a.fixed and a.action == "introduce" else ""
    return f"{a.arch}: {a.name} {a.version}: {a.id} ({a.severity}){fix}: {a.summary}"


def advisory_lines(p: ProfilePlan, line: Line) -> list[str]:
    rows = [line("+" if a.action == "introduce" else "-", ("introduces " if a.action == "introduce" else "fixes ")
                 + advisory_text(a)) for a in p.advisories]
    if rows and p.advisories_remaining:
        rows.append(line(" ", f"({p.advisories_remaining} advisories still apply, unchanged: vcomp audit "
                              f"{p.profile})"))
    return rows


def _value(value: Any) -> str:
    """A profile value in full (never shortened: a structure's parts are diffed, see plan.value_diff)."""
    return value if isinstance(value, str) else json.dumps(_jsonable(value), sort_keys=True, ensure_ascii=False)


def profile_change_text(c: ProfileChange) -> str:
    """``packages[nano]``, ``hostname: a -> b``; a list item that is just its name shows no value."""
    if c.action == "change":
        return f"{c.path}: {_value(c.old)} -> {_value(c.new)}"
    value = c.new if c.action == "add" else c.old
    if "[" in c.path and value == c.path.split("[", 1)[1][:-1]:
        return c.path
    return f"{c.path}: {_value(value)}"


def version_text(c: PackageChange, arrow: str = "->") -> str:
    if c.action in ("upgrade", "downgrade"):
        return f"{c.old} {arrow} {c.new}"
    return str(c.new if c.action != "remove" else c.old)


def why_text(c: PackageChange) -> str:
    return c.reason if c.action in ("add", "remove") else f"{c.action}; {c.reason}"


def output_detail(o: OutputChange) -> str:
    size = f"; about {human_size(o.size_delta)}" if o.size_delta else ""
    return f"({o.type}): {o.action}: {o.reason}{size}"


def output_text(o: OutputChange) -> str:
    return f"{o.arch}/{o.name} {output_detail(o)}"


def base_text(p: ProfilePlan) -> str:
    return f", base {p.base[:7]}" if p.base else ""


def header_text(p: ProfilePlan) -> str:
    return f"{p.profile} ({p.name}): {p.status}{base_text(p)}"


def top_key(path: str) -> str:
    """The profile key of a change's path: ``policy`` of ``policy.allowed-licenses[MIT]``."""
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def whole_profile_text(p: ProfilePlan) -> str | None:
    """A new or removed profile is one line, not one line per setting."""
    settings = _plural(len({top_key(c.path) for c in p.profile_changes}), "setting")
    if p.status == "new":
        return f"new profile ({settings})"
    if p.status == "removed":
        return f"profile removed ({settings}); its images are no longer desired"
    return None


def by_arch(changes: Sequence[PackageChange]) -> Iterator[tuple[str, list[PackageChange], list[PackageChange]]]:
    """(arch, packages asked for, dependencies) in architecture order; each list keeps the plan's name order."""
    for arch in sorted({c.arch for c in changes}):
        mine = [c for c in changes if c.arch == arch]
        yield arch, [c for c in mine if c.explicit], [c for c in mine if not c.explicit]


# ---------------------------------------------------------------- the text table


def _painter(color: bool) -> Line:
    def line(sym: str, text: str) -> str:
        mark = f"\x1b[{ANSI[sym]}m{sym}\x1b[0m" if color and sym in ANSI else sym
        return f"{mark} {text}"
    return line


def _indent(lines: Sequence[str], depth: int) -> list[str]:
    return [" " * (2 * depth) + x for x in lines]


def _profile_lines(p: ProfilePlan, line: Line) -> list[str]:
    whole = whole_profile_text(p)
    if whole is not None:
        return [line("+" if p.status == "new" else "-", whole)]
    return [line(symbol(c.action), profile_change_text(c)) for c in p.profile_changes]


def _package_rows(changes: Sequence[PackageChange], line: Line, width: int) -> list[str]:
    return [line(symbol(c.action), f"{c.name} {version_text(c)} ({why_text(c)})".ljust(width) +
                 f"  {human_size(c.size_delta)}") for c in changes]


def _arch_lines(arch: str, asked: list[PackageChange], deps: list[PackageChange], line: Line) -> list[str]:
    width = max(len(f"{c.name} {version_text(c)} ({why_text(c)})") for c in asked + deps)
    out = [f"{arch} packages ({human_size(sum(c.size_delta for c in asked + deps))}):"]
    for title, group in (("asked for:", asked), ("dependencies:", deps)):
        if group:
            out += _indent([title, *_indent(_package_rows(group, line, width), 1)], 1)
    return out


def _section(title: str, lines: Sequence[str]) -> list[str]:
    return [title, *_indent(lines, 1)] if lines else []


def _profile_block(p: ProfilePlan, line: Line) -> list[str]:
    body = _section("profile:", _profile_lines(p, line))
    for arch, asked, deps in by_arch(p.package_changes):
        body += _arch_lines(arch, asked, deps, line)
    body += _section("outputs:", [line(symbol(o.action), output_text(o)) for o in p.output_changes])
    body += _section("call-outs:", [line("!", f"{c.kind}: {c.message}") for c in p.callouts])
    body += _section("advisories:", advisory_lines(p, line))
    body += _section("policy:", [line("x", f"policy {v.rule}: {v.message}") for v in p.violations])
    return [header_text(p), *_indent(body, 1)]


def table(plan: Plan, *, color: bool = False) -> str:
    """A Terraform-like plan: per profile its changes, then one summary line."""
    line = _painter(color)
    blocks = ["\n".join(_profile_block(p, line)) for p in plan.profiles]
    if plan.acknowledged:
        blocks.append("Acknowledged: " + ", ".join(plan.acknowledged))
    last = summary_line(plan)
    blocks.append(f"\x1b[1m{last}\x1b[0m" if color else last)
    return "\n\n".join(blocks) + "\n"


# ---------------------------------------------------------------- markdown


def md_text(text: str) -> str:
    """Plain text safe in markdown and in table cells (``|`` and markup characters escaped)."""
    return MD_SPECIAL.sub(r"\\\1", text).replace("\r", "").replace("\n", "<br>")


def md_code(text: str) -> str:
    """An inline code span that survives backticks (not for table cells: GitHub splits them on ``|``)."""
    text = text.replace("\n", " ")
    fence = "`" * (max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Cells are already escaped."""
    return ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|",
            *("| " + " | ".join(r) + " |" for r in rows)]


def _package_row(c: PackageChange) -> list[str]:
    return [c.arch, md_code(symbol(c.action)), md_text(c.name), md_text(version_text(c, "→")),
            md_text(why_text(c)), human_size(c.size_delta)]


def md_packages(p: ProfilePlan) -> list[str]:
    if not p.package_changes:
        return []
    rows, totals = [], []
    for arch, asked, deps in by_arch(p.package_changes):
        rows += [_package_row(c) for c in asked + deps]
        totals.append(f"{arch} {human_size(sum(c.size_delta for c in asked + deps))}")
    head = ["arch", "change", "package", "version", "reason", "size"]
    return [f"**Packages** ({', '.join(totals)}; asked for first, then dependencies)", "", *md_table(head, rows), ""]


def md_alert(kind: str, title: str, items: Sequence[str]) -> list[str]:
    return [f"> [!{kind}]", f"> **{title}**", *(f"> - {i}" for i in items), ""] if items else []


def _callout_item(c: Callout) -> str:
    return f"**{md_text(c.kind)}**: {md_text(c.message)}"


def _violation_item(p: ProfilePlan, v: Violation) -> str:
    return f"{md_code(p.profile)} **{md_text(v.rule)}**: {md_text(v.message)}"


def md_profile(p: ProfilePlan) -> list[str]:
    out = [f"### {md_code(p.profile)} ({md_text(p.name)}): {p.status}{md_text(base_text(p))}", ""]
    whole = whole_profile_text(p)
    changes = [f"{symbol(c.action)} {profile_change_text(c)}" for c in p.profile_changes]
    items = [md_code(("+ " if p.status == "new" else "- ") + whole)] if whole else [md_code(c) for c in changes]
    if items:
        out += ["**Profile changes**", "", *(f"- {i}" for i in items), ""]
    out += md_packages(p)
    if p.output_changes:
        outputs = [f"- {md_code(symbol(o.action) + ' ' + o.arch + '/' + o.name)} {md_text(output_detail(o))}"
                   for o in p.output_changes]
        out += ["**Outputs to rebuild**", "", *outputs, ""]
    out += md_alert("WARNING", "Call-outs: review these with care", [_callout_item(c) for c in p.callouts])
    if p.advisories:
        rows = [[md_text(a.action), a.arch, md_text(a.name), md_text(a.version), md_text(a.id), a.severity,
                 md_text(", ".join(a.fixed) or "-"), md_text(a.summary)] for a in p.advisories]
        out += ["**Advisories** (introduced by this change, or fixed by it)", "",
                *md_table(["", "arch", "package", "version", "advisory", "severity", "fixed in", "summary"], rows),
                ""]
    return out


def md_base(base: Mapping[str, str]) -> str:
    """What the plan compared with, never empty: the ``--base`` ref, the default base's description and
    commit, or that there is no previous commit (every profile is new)."""
    ref, commit, about = base.get("ref", ""), base.get("commit", ""), base.get("description", "")
    if ref:
        return md_code(ref)
    if commit:
        return md_text(about or "the previous commit") + f" (commit {md_code(commit[:12])})"
    return "no previous commit" + (f" ({md_text(about.strip('()'))})" if about else "") + ": every profile is new"


def markdown(plan: Plan) -> str:
    """GitHub-flavoured markdown for ``$GITHUB_STEP_SUMMARY`` and pull-request comments."""
    out = [f"## vcomp plan: {VERDICTS.get(plan.verdict, 'error')}", "", f"**{md_text(summary_line(plan))}**", ""]
    head = plan.head.get("commit", "")
    out += [f"Base: {md_base(plan.base)}; head: {md_code(head[:12] or 'none')}"
            + (f" (working tree {md_text(plan.head['worktree'])})" if plan.head.get("worktree") else ""), ""]
    if plan.acknowledged:
        out += [f"Acknowledged: {', '.join(md_code(a) for a in plan.acknowledged)}", ""]
    violations = [_violation_item(p, v) for p in plan.profiles for v in p.violations]
    out += md_alert("CAUTION", f"{_plural(len(violations), 'policy violation')}: the plan fails policy (exit code "
                    f"{EXIT_POLICY})", violations)
    for p in plan.profiles:
        out += md_profile(p) if p.changed or p.callouts or p.violations else []
    unchanged = [md_code(p.profile) for p in plan.profiles if not (p.changed or p.callouts or p.violations)]
    if unchanged:
        out += [f"Unchanged: {', '.join(unchanged)}", ""]
    return "\n".join(out).rstrip("\n") + "\n"


# ---------------------------------------------------------------- JSON


def _jsonable(value: Any) -> Any:
    """Profile values come from YAML (dates, sets, non-string keys are possible): make them JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_jsonable(v) for v in value), key=repr)
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def to_json(plan: Plan) -> str:
    """The saved plan (``vcomp plan --format json``; ``vcomp apply`` reads it); schema: schemas/plan.schema.json."""
    return json.dumps(_jsonable(plan.to_dict()), indent=2, sort_keys=True) + "\n"


def matrix_json(plan: Plan) -> str:
    """``{"include": [{"profile", "arch", "output"}, ...]}`` on one line, for GitHub's ``fromJSON``."""
    return json.dumps({"include": matrix(plan)}, sort_keys=True, separators=(",", ":")) + "\n"
