"""``--json``: the data verbs' one JSON document on stdout, and the table of which verb writes which schema.

The rules (docs/json-output.md): with ``--json`` a verb prints ONE JSON document on stdout and nothing else
(progress goes to stderr), keys sorted, indented, deterministic; the exit code is the text form's. Errors are
unchanged: ``error: ...`` and ``hint: ...`` on stderr, and an error that stops the verb prints no document. A
verb that reports a failure per item and goes on (``validate``, ``pkg verify``, ``pkg lint``) records each in
the document too. Every document of a new verb carries ``format_version`` (``1.x``: minor versions only add
fields; a breaking change is a new major version and a new schema) and is described by
``schemas/NAME.schema.json`` (JSON Schema draft 2020-12).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence

from composer.cli.common import current, out, warn
from composer.errors import ComposerError

FORMAT_VERSION = "1.0"
"""Of every document written through :func:`emit`; minor versions only add fields."""

SCHEMAS: Mapping[str, str] = {
    # verb (as typed after `vcomp`) -> its schema, schemas/NAME.schema.json
    "validate": "validate",
    "lock": "lock",
    "outdated": "outdated",
    "why": "why",
    "search": "search",
    "info": "index-entry",
    "fetch": "fetch",
    "build": "build",
    "boot": "boot",
    "test": "test",
    "plan": "plan",
    "diff": "diff",
    "history": "generations",
    "release": "release",
    "rollback-channel": "rollback-channel",
    "key id": "key-id",
    "pkg contents": "contents",
    "pkg history": "history",
    "pkg lint": "lint",
    "pkg install": "transaction",
    "pkg remove": "transaction",
    "pkg upgrade": "transaction",
    "pkg rollback": "transaction",
    "pkg autoremove": "transaction",
    "pkg info": "pkg-info",
    "pkg verify": "pkg-verify",
    "pkg list": "pkg-list",
    "pkg files": "pkg-files",
    "pkg owns": "pkg-owns",
    "pkg depends": "pkg-depends",
    "pkg rdepends": "pkg-rdepends",
    "pkg orphans": "pkg-list",
    "pkg audit": "audit",
    "pkg update": "pkg-update",
    "pkg status": "pkg-status",
    "cache list": "cache-list",
    "cache du": "cache-du",
    "cache verify": "cache-verify",
    "cache gc": "cache-gc",
    "repo add": "repo-add",
    "repo publish": "repo-publish",
    "repo add-image": "repo-add-image",
    "repo deltas": "repo-deltas",
    "image chunk": "image-chunk",
    "image fetch": "image-fetch",
    "repo vendor": "repo-vendor",
    "import debian": "import-debian",
    "plugins": "plugins",
    "sdk build": "sdk-build",
    "debug timeline": "debug-timeline",
    "license-report": "license-report",
    "pkg rebuild-check": "rebuild-check",
    "graph": "graph",
    "size": "size",
    "repo stats": "repo-stats",
    "advisory list": "advisory-list",
    "audit": "audit",
    "build-matrix": "build-matrix",
}
"""The data verbs and the schema of their ``--json`` document (tests/unit/test_json_output.py walks the parser:
every verb is either here or in its list of verbs that print no data)."""

def add_json(parser: argparse.ArgumentParser, verb: str) -> None:
    """The ``--json`` option of a data verb (``verb`` as typed: its row of :data:`SCHEMAS` names the schema)."""
    schema = f" (schemas/{SCHEMAS[verb]}.schema.json)" if verb in SCHEMAS else ""
    parser.add_argument("--json", action="store_true", help=f"print one JSON document on stdout{schema}")


def error_dict(exc: ComposerError) -> dict[str, str | None]:
    """An error a verb reports for one item and goes on (also on stderr), as its document records it (pure)."""
    return {"message": exc.message, "hint": exc.hint or None}


def wanted(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def say(args: argparse.Namespace) -> Callable[[str], None]:
    """Where progress lines go: stdout for the text form, stderr with ``--json`` (stdout holds the document);
    silenced by ``-q`` either way."""
    write = warn if wanted(args) else out

    def said(text: str = "") -> None:
        if current().verbosity >= 0:
            write(text)
    return said


def dumps(doc: Mapping[str, object] | Sequence[object]) -> str:
    """A document as printed: keys sorted, indented by 2 (pure; a list for the verbs that printed one before
    documents were versioned: cache list, pkg list/files/orphans)."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False)


def document(doc: Mapping[str, object]) -> dict[str, object]:
    """``doc`` with its ``format_version`` (pure)."""
    return {"format_version": FORMAT_VERSION, **doc}


def emit(doc: Mapping[str, object]) -> None:
    """Print the one JSON document of a verb."""
    out(dumps(document(doc)))
