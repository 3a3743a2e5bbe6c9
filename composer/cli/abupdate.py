"""``vpk update`` and ``vpk status`` (also ``vcomp pkg --root / update|status``): A/B image updates on the device
(composer/update/device.py, docs/updates/ab-slots.md). Only ``/`` is a device: these verbs read the running
system's kernel command line, ESP and partitions."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from composer.cli import jsonout
from composer.errors import UserError
from composer.run import run
from composer.update import device as ab

EXIT_OK = 0


def _device(args: argparse.Namespace) -> ab.Device:
    root = Path(args.pkg_root)
    if root.resolve() != Path("/"):
        raise UserError(f"'{args.verb}' works on the running system only, not on {root}",
                        hint="run it on the device: vpk update (or vcomp pkg --root / update)")
    say = jsonout.say(args) if jsonout.wanted(args) else _say
    return ab.Device(say=say)


def _say(line: str) -> None:
    print(line, flush=True)


def cmd_status(args: argparse.Namespace) -> int:
    """Slots, generations, states, the booted slot and the channel (``--json``: schemas/pkg-status.schema.json)."""
    result = ab.status(_device(args), online=not getattr(args, "offline", False))   # the global --offline
    if jsonout.wanted(args):
        jsonout.emit(result.to_dict())
    else:
        for line in result.lines():
            print(line)
    return EXIT_OK


def cmd_update(args: argparse.Namespace) -> int:
    """Fetch the channel's newest generation into the inactive slot (``--json``: schemas/pkg-update.schema.json)."""
    outcome = ab.update(_device(args))
    p = outcome.plan
    if jsonout.wanted(args):
        jsonout.emit(outcome.to_dict())
    elif p.action == "update" and p.entry is not None:
        share = f"{100 * outcome.transferred / outcome.size:.1f} %" if outcome.size else "-"
        print(f"VCOMP-UPDATE: wrote generation {p.entry.generation} to slot {p.slot} ({p.entry.name}); "
              f"transferred {outcome.transferred} bytes for {outcome.size} bytes of images ({share})", flush=True)
    else:
        print(f"VCOMP-UPDATE: nothing to do: {p.reason}", flush=True)
    if p.action in ("update", "pending") and args.reboot:
        print("VCOMP-UPDATE: rebooting into the new generation", flush=True)
        run(["reboot"])
    return EXIT_OK


def register_verbs(verb: Callable[..., argparse.ArgumentParser]) -> None:
    """Add the verbs through pkgroot.register's ``verb(name, func, help, json_out=...)`` helper."""
    u = verb("update", cmd_update, "update this A/B device to its channel's newest generation", json_out=True)
    u.add_argument("--reboot", action="store_true", help="reboot into the new generation when one was written")
    verb("status", cmd_status, "this A/B device's slots, generations and channel (with --offline: without asking "
         "the repository for the channel's newest generation)", json_out=True)
