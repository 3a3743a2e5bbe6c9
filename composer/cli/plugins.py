"""``vcomp plugins``: the plugins loaded into each registry, and the ones refused (docs/plugins.md)."""

from __future__ import annotations

import argparse
from typing import Any

from composer.cli import jsonout
from composer.cli.common import EXIT_ERROR, EXIT_OK, Subparsers, table
from composer.cli.common import out as _out
from composer.cli.common import warn as _warn


def _registries() -> list[Any]:
    """Every registry plugins add rows to, in the order of docs/plugins.md."""
    from composer.gitops.policy import POLICY_GATES
    from composer.image.outputs import OUTPUT_TYPES
    from composer.package.sources import SOURCE_KINDS
    from composer.repo.transports import TRANSPORTS
    return [OUTPUT_TYPES, SOURCE_KINDS, TRANSPORTS, POLICY_GATES]


def report() -> dict[str, Any]:
    """What ``vcomp plugins --json`` prints (schemas/plugins.schema.json), without its format version."""
    from composer.plugins import load
    from composer.plugins.base import API_VERSION
    loaded: list[dict[str, str]] = []
    refused: list[dict[str, str]] = []
    for registry in _registries():
        found = load.found(registry.spec(), quiet=True)
        loaded += [{**kept.origin.to_dict(), "kind": registry.kind, "name": kept.name} for kept in found.loaded]
        refused += [{**r.origin.to_dict(), "kind": registry.kind, "reason": r.reason, "hint": r.hint}
                    for r in found.refused]
    return {"api_version": API_VERSION, "enabled": load.enabled(), "plugins": loaded, "refused": refused}


def cmd_plugins(args: argparse.Namespace) -> int:
    doc = report()
    code = EXIT_ERROR if doc["refused"] else EXIT_OK
    if args.json:
        jsonout.emit(doc)
        return code
    if not doc["enabled"]:
        _out("plugins are off (--no-plugins or VCOMP_NO_PLUGINS)")
        return code
    rows = [(p["kind"], p["name"], p["distribution"], p["version"], f"{p['group']}: {p['target']}")
            for p in doc["plugins"]]
    for line in table(rows):
        _out(line)
    if not rows:
        _out(f"no plugins (plugin API version {doc['api_version']}; docs/plugins.md)")
    for r in doc["refused"]:
        _warn(f"refused: plugin '{r['entry_point']}' ({r['group']} = {r['target']}) of {r['distribution']} "
              f"{r['version']}: {r['reason']} (fix: {r['hint']})")
    return code


def register(sub: Subparsers) -> None:
    p = sub.add_parser("plugins", help="the plugins loaded (output types, source kinds, transports, policy gates "
                                       "from other distributions) and any refused; exit 1 when one is refused")
    jsonout.add_json(p, "plugins")
    p.set_defaults(func=cmd_plugins)
