"""The per-package translation report of an imported Debian closure (pure): for each package, what its
maintainer scripts and shipped files became as ``[actions]`` and what was recorded as untranslated, with the
architectures it holds for. Markdown, deterministic (sorted; same packages, same bytes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from composer.package.actions import Actions

Imported = Mapping[str, Sequence[tuple[str, Actions]]]   # arch -> (package name, its actions)


def translated(a: Actions) -> list[str]:
    """One short phrase per translated action."""
    out = [f"user {u.name}" + (f" (group {u.group})" if u.group else "") for u in a.users]
    out += [f"group {g.name}" for g in a.groups]
    out += [f"member {m.user} of {m.group}" for m in a.members]
    out += [f"tmpfiles {t.type} {t.path}" + (f" <- {t.argument}" if t.type in ("C", "L") else "")
            + (f" {t.mode:04o}" if t.mode is not None else "")
            + (f" {t.user}:{t.group}" if (t.user, t.group) != ("root", "root") else "") for t in a.tmpfiles]
    out += [f"alternative {x.name}: {x.link} -> {x.path} ({x.priority})" for x in a.alternatives]
    out += [f"service {s.name}: {' '.join(s.command)} (readiness {s.readiness})" for s in a.services]
    out += [f"first boot {f}" for f in a.firstboot] + (["ldconfig (first boot)"] if a.ldconfig else [])
    out += [f"generate {g}" for g in a.generate]
    return out


def _cell(items: Sequence[str]) -> str:
    return "<br>".join(i.replace("|", "\\|") for i in items) or "-"


def render(imported: Imported, *, title: str) -> str:
    arches = sorted(imported)
    rows: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {}
    for arch in arches:
        for name, actions in imported[arch]:
            rows.setdefault(name, {})[arch] = (tuple(translated(actions)), tuple(actions.untranslated))
    lines = [f"# {title}", "",
             "Per package of the closure: what the import translated into `[actions]` (applied at image build or "
             "at first boot, never by running a script) and what it recorded as untranslated (`vcomp pkg lint` "
             "warns `untranslated`). One row per package; the architectures it holds for when not all.", ""]
    for arch in arches:
        n = len(imported[arch])
        some = sum(1 for _n, a in imported[arch] if translated(a))
        todo = sum(1 for _n, a in imported[arch] if a.untranslated)
        items = sum(len(a.untranslated) for _n, a in imported[arch])
        lines.append(f"- {arch}: {n} packages, {some} with translated actions, {todo} with {items} untranslated "
                     "items")
    lines += ["", "| package | translated | untranslated |", "| --- | --- | --- |"]
    for name in sorted(rows):
        variants = sorted(set(rows[name].values()))
        for variant in variants:
            holds = [a for a in arches if rows[name].get(a) == variant]
            label = name if len(holds) == len(arches) else f"{name} ({', '.join(holds)})"
            if variant == ((), ()):
                continue
            lines.append(f"| {label} | {_cell(variant[0])} | {_cell(variant[1])} |")
    quiet = sorted(n for n in rows if all(v == ((), ()) for v in rows[n].values()))
    lines += ["", f"Nothing to translate ({len(quiet)}): {', '.join(quiet)}.", ""]
    return "\n".join(lines)
