"""`vcomp cache list|du|verify|gc` over every cache kind (composer.caches.registry); registered by composer.cli.main."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from composer.cli import jsonout
from composer.cli.common import EXIT_ERROR, EXIT_OK, Subparsers, table
from composer.cli.common import out as _out


def _root() -> Path:
    from composer.package.build import default_cache
    return default_cache()


def _kinds() -> Any:
    from composer.caches.registry import KINDS
    return KINDS


def _row(e: Any) -> dict[str, Any]:
    return {"kind": e.kind, "key": e.key, "path": str(e.path), "size": e.size, "last_used": round(e.last_used, 3)}


def cmd_list(args: argparse.Namespace) -> int:
    from composer.caches import ops, policy
    pairs = sorted(ops.all_entries(_kinds(), _root()), key=lambda p: (p[1].kind, -p[1].last_used, p[1].key))
    if args.json:
        _out(jsonout.dumps([_row(e) for _k, e in pairs]))  # a list, as before schemas: no format_version
        return EXIT_OK
    for line in table([(e.kind, e.key, policy.human(e.size)) for _k, e in pairs], right={2}):
        _out(line)
    return EXIT_OK


def cmd_du(args: argparse.Namespace) -> int:
    from composer.caches import ops, policy
    root = _root()
    totals = {k.name: [0, 0] for k in _kinds()}
    for _k, e in ops.all_entries(_kinds(), root):
        totals[e.kind][0] += 1
        totals[e.kind][1] += e.size
    if args.json:
        jsonout.emit({"root": str(root), "kinds": {n: {"entries": c, "size": s} for n, (c, s) in totals.items()},
                      "size": sum(s for _c, s in totals.values()), "cap": ops.cap_from_env()})
        return EXIT_OK
    rows: list[tuple[str | int, ...]] = [(name, count, "entries", policy.human(size))
                                         for name, (count, size) in totals.items()]
    rows.append(("total", sum(c for c, _s in totals.values()), "entries",
                 policy.human(sum(s for _c, s in totals.values())),
                 f"in {root} (cap {policy.human(ops.cap_from_env())}, {ops.MAX_ENV})"))
    for line in table(rows, right={3}):
        _out(line)
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from composer.caches import ops
    checked, bad = ops.verify(_kinds(), _root())
    if args.json:
        jsonout.emit({"checked": checked, "problems": bad})
    else:
        for line in bad:
            _out(line)
        _out(f"{checked} cache entries checked: " + (f"{len(bad)} problem(s); remove them with: vcomp cache gc --bad"
                                                        if bad else "all intact"))
    return EXIT_ERROR if bad else EXIT_OK


def cmd_gc(args: argparse.Namespace) -> int:
    from composer.caches import ops, policy
    root, kinds = _root(), _kinds()
    bad = 0
    if args.bad:
        for k, e in ops.all_entries(kinds, root):
            if k.verify(root, e):
                k.remove(root, e)
                bad += 1
    limit = policy.parse_size(args.max_size, where="--max-size") if args.max_size else None
    if args.keep_last is None and limit is None:
        limit = ops.cap_from_env()
    done = ops.collect(kinds, root, keep_last=args.keep_last, max_size=limit)
    freed = sum(e.size for e in done.removed)
    kept = sum(e.size for e in done.kept)
    if args.json:
        jsonout.emit({"removed": [_row(e) for e in done.removed], "removed_size": freed, "bad_removed": bad,
                      "kept": len(done.kept), "kept_size": kept, "leftovers": done.leftovers})
    else:
        _out(f"removed {len(done.removed)} entries ({policy.human(freed)})"
             + (f" and {bad} damaged one(s)" if bad else "")
             + (f" and {done.leftovers} leftover(s) of killed writers" if done.leftovers else "")
             + f"; kept {len(done.kept)} ({policy.human(kept)})")
    return EXIT_OK


def _keep_last(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of entries")
    return int(text)


def register(sub: Subparsers) -> None:
    cache = sub.add_parser("cache", help="the local caches: list, du, verify, gc (VCOMP_CACHE)")
    verbs = cache.add_subparsers(dest="verb", required=True)
    c = verbs.add_parser("list", help="every cache entry with its size")
    jsonout.add_json(c, "cache list")
    c.set_defaults(func=cmd_list)
    c = verbs.add_parser("du", help="entries and bytes per cache kind")
    jsonout.add_json(c, "cache du")
    c.set_defaults(func=cmd_du)
    c = verbs.add_parser("verify", help="check every entry against its recorded digests (exit 1 if any is bad)")
    jsonout.add_json(c, "cache verify")
    c.set_defaults(func=cmd_verify)
    c = verbs.add_parser("gc", help="evict least recently used entries (default: down to VCOMP_CACHE_MAX)")
    c.add_argument("--keep-last", type=_keep_last, metavar="N", help="keep the N most recently used entries per kind")
    c.add_argument("--max-size", metavar="SIZE", help="evict until the caches fit in SIZE (500M, 2G)")
    c.add_argument("--bad", action="store_true", help="also remove every entry that fails verification")
    jsonout.add_json(c, "cache gc")
    c.set_defaults(func=cmd_gc)
