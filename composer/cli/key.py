"""`vcomp key generate|id`: developer and repository keys (registered by composer.cli.main)."""

from __future__ import annotations

import argparse
from pathlib import Path

from composer import settings
from composer.cli import jsonout
from composer.cli.common import EXIT_OK, Subparsers
from composer.cli.common import out as _out
from composer.errors import UserError


def cmd_key_generate(args: argparse.Namespace) -> int:
    from composer.trust.keys import ask_new_passphrase, generate
    if args.secure_boot:
        return _generate_secure_boot(args)
    passphrase = settings.passphrase(args.passphrase_env) if args.passphrase_env else None
    if args.passphrase_env and passphrase is None:
        raise UserError(f"--passphrase-env {args.passphrase_env}: the variable is unset or empty; no key written",
                        hint=f"export {args.passphrase_env}=..., or use --passphrase to type it")
    if args.passphrase:
        passphrase = ask_new_passphrase(Path(args.dir) / f"{args.name}.key")
    key, pub, keyid = generate(args.name, Path(args.dir), passphrase=passphrase, force=args.force)
    _out(f"{key}\n{pub}\nkey id {keyid}")
    return EXIT_OK


def _generate_secure_boot(args: argparse.Namespace) -> int:
    from composer.trust.sbkeys import generate_secure_boot
    if args.passphrase or args.passphrase_env:
        raise UserError("a Secure Boot key is written unencrypted (sbsign reads it without a prompt)",
                        hint="drop --passphrase/--passphrase-env; keep the .key outside the repository and images")
    key, crt = generate_secure_boot(args.name, Path(args.dir), force=args.force)
    _out(f"{key}\n{crt}\nname them in the profile: secure-boot: {{key: {key}, certificate: {crt}}}")
    return EXIT_OK


def cmd_key_id(args: argparse.Namespace) -> int:
    from composer.trust.keys import load_key_spec, load_public_key, parse_key_spec
    path = parse_key_spec(args.key).path
    key = load_key_spec(args.key).public if path.suffix == ".key" else load_public_key(path)
    if jsonout.wanted(args):
        jsonout.emit({"key": args.key, "keyid": key.keyid})
        return EXIT_OK
    _out(key.keyid)
    return EXIT_OK


def register(sub: Subparsers) -> None:
    key = sub.add_parser("key", help="developer and repository keys").add_subparsers(dest="verb", required=True)
    k = key.add_parser("generate", help="write NAME.key (ed25519, PEM) and NAME.pub")
    k.add_argument("name")
    k.add_argument("--dir", default=".")
    secret = k.add_mutually_exclusive_group()
    secret.add_argument("--passphrase", action="store_true",
                        help="encrypt the private key with a passphrase typed twice on the terminal")
    secret.add_argument("--passphrase-env", metavar="VAR",
                        help="encrypt the private key with the passphrase in this environment variable")
    k.add_argument("--force", action="store_true", help="replace existing files")
    k.add_argument("--secure-boot", action="store_true",
                   help="a UEFI Secure Boot db key instead: NAME.key (RSA 2048) and NAME.crt (self-signed X.509) "
                        "for a profile's secure-boot (docs/verified-boot.md)")
    k.set_defaults(func=cmd_key_generate)
    k = key.add_parser("id", help="print the key id (TUF style) of a .pub or .key file")
    k.add_argument("key")
    jsonout.add_json(k, "key id")
    k.set_defaults(func=cmd_key_id)
