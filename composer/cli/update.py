"""``vcomp image chunk|fetch``: content-defined chunk stores of images and delta fetches (docs/updates/deltas.md).
``vcomp repo add-image`` (cli/repo.py) publishes an image's chunk index as a TUF target."""

from __future__ import annotations

import argparse
from pathlib import Path

from composer.cli import jsonout
from composer.cli.common import EXIT_OK, Subparsers
from composer.cli.common import out as _out
from composer.errors import UserError


def cmd_image_chunk(args: argparse.Namespace) -> int:
    from composer.update.store import chunk_image
    image, store = Path(args.image), Path(args.store)
    stored = chunk_image(image, store)
    data = stored.index.to_bytes()
    index_path = Path(args.index) if args.index else store / f"{image.name}.caidx.json"
    from composer.fsutil import atomic_write, sha256_bytes
    atomic_write(index_path, data)
    doc = {"image": str(image), "index": str(index_path), "index-sha256": sha256_bytes(data),
           "size": stored.index.size, "sha256": stored.index.sha256, "chunks": len(stored.index.chunks),
           "distinct-chunks": len(stored.index.unique()), "new-chunks": stored.written,
           "new-bytes": stored.written_bytes}
    if jsonout.wanted(args):
        jsonout.emit(doc)
        return EXIT_OK
    _out(f"{image}: {doc['chunks']} chunks ({doc['distinct-chunks']} distinct), {stored.written} new in {store} "
         f"({stored.written_bytes} bytes compressed); index {index_path}")
    return EXIT_OK


def cmd_image_fetch(args: argparse.Namespace) -> int:
    from composer.update.assemble import Seed, assemble
    from composer.update.index import ChunkIndex
    if len(args.seed_index) > len(args.seed):
        raise UserError("vcomp image fetch: more --seed-index than --seed", hint="give each --seed-index after the "
                        "--seed whose index it is (the first index goes with the first seed)")
    indexes = [ChunkIndex.from_bytes(Path(p).read_bytes(), p) for p in args.seed_index]
    seeds = [Seed(path=Path(s), index=indexes[i] if i < len(indexes) else None) for i, s in enumerate(args.seed)]
    dest = Path(args.out)
    if args.store:      # a local store and index file (no TUF): for tests and air-gapped copies
        from composer.update.store import chunk_name
        store = Path(args.store)
        index = ChunkIndex.from_bytes(Path(args.name).read_bytes(), args.name)

        def fetch(sha: str, max_bytes: int) -> bytes:
            with (store / chunk_name(sha)).open("rb") as f:
                return f.read(max_bytes + 1)
        report = assemble(index, seeds, fetch, dest, origin=args.store)
    else:
        from composer.package.build import default_cache
        from composer.repo.client import RepositoryClient, load_trusted_root
        from composer.update.remote import fetch_image
        if not args.repo or not args.root:
            raise UserError("vcomp image fetch: give the repository (--repo URL --root ROOT.json) or a local "
                            "store (--store DIR, NAME the index file)", hint="see: vcomp image fetch --help")
        client = RepositoryClient(args.repo, load_trusted_root(Path(args.root)), default_cache() / "repos",
                                  mirrors=args.mirror or ())
        report = fetch_image(client, args.name, seeds, dest)
    if jsonout.wanted(args):
        jsonout.emit({"image": args.name, "path": str(dest), **report.to_dict()})
        return EXIT_OK
    _out(f"{dest}: {report.size} bytes, {report.chunks} chunks: {report.reused_chunks} from the seeds "
         f"({report.reused_bytes} bytes), {report.fetched_chunks} fetched ({report.transferred_bytes} bytes "
         "transferred)")
    return EXIT_OK


def register(sub: Subparsers) -> None:
    image = sub.add_parser("image", help="chunk stores of images and delta fetches").add_subparsers(
        dest="verb", required=True)
    c = image.add_parser("chunk", help="cut an image into content-defined chunks in a store; write its index")
    c.add_argument("image")
    c.add_argument("--store", required=True, help="the chunk store directory (created if missing)")
    c.add_argument("--index", help="where to write the index (default: STORE/IMAGE-NAME.caidx.json)")
    jsonout.add_json(c, "image chunk")
    c.set_defaults(func=cmd_image_chunk)
    f = image.add_parser("fetch", help="assemble an image from seed files plus the chunks they lack, verified")
    f.add_argument("name", help="the image's name in the repository (repo add-image --name), or with --store "
                                "the index file")
    f.add_argument("--seed", action="append", default=[], help="a file to reuse chunks from (the running slot; "
                                                              "repeatable)")
    f.add_argument("--seed-index", action="append", default=[], metavar="INDEX",
                   help="the chunk index of a seed (in --seed order; the running slot's, kept from its update): "
                        "its chunks are found without cutting the seed again")
    f.add_argument("--out", required=True, help="the image to write (atomically, only when it verifies)")
    f.add_argument("--store", help="a local chunk store instead of a repository (no TUF: NAME is the index file)")
    f.add_argument("--repo", help="repository URL (file://, http://, https://) or directory")
    f.add_argument("--root", help="the pinned trust root (root.json)")
    f.add_argument("--mirror", action="append", help="an untrusted mirror of the index")
    jsonout.add_json(f, "image fetch")
    f.set_defaults(func=cmd_image_fetch)
