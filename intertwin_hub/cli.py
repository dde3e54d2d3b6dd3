"""The ``intertwin-hub`` command: operator tools that need no running hub.

``intertwin-hub catalogue check FILE`` validates a site catalogue as the hub does at start-up
and prints the error with the key at fault, or a summary of the sites.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .sites import CatalogueError, Site, load_catalogue


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def _summary(site: Site) -> str:
    where = "cloud" if not site.offload else f"offload via {site.node.name}"
    batch = f", {site.batch.system}" if site.batch else ""
    parts = ", ".join(f"{p.slug}={p.batch_name}" for p in site.partitions)
    gpus = f", {site.node.gpu.count} x {site.node.gpu.model}" if site.node.gpu else ""
    vos = ", ".join(site.allowed_vos) or "every user"
    return (
        f"  {site.slug}: {site.title} ({where}{batch}{gpus}); "
        f"{_count(len(site.resources), 'size')}, {_count(len(site.images), 'image')}"
        + (f", partitions {parts}" if parts else "")
        + f"; start timeout {site.start_timeout} s; open to {vos}"
    )


def catalogue_check(path: str) -> int:
    try:
        catalogue = load_catalogue(path)
    except CatalogueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{path}: {len(catalogue)} sites, valid")
    for site in catalogue:
        print(_summary(site))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="intertwin-hub", description="Tools for operators of the interTwin hub."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    catalogue = commands.add_parser("catalogue", help="the site catalogue")
    what = catalogue.add_subparsers(dest="action", required=True)
    check = what.add_parser("check", help="validate a site catalogue as the hub does at start-up")
    check.add_argument("file", help="the catalogue YAML (c.InterTwinSpawner.site_catalogue_path)")
    args = parser.parse_args(argv)
    if args.command == "catalogue" and args.action == "check":
        return catalogue_check(args.file)
    parser.error("unknown command")  # argparse exits; unreachable with required subparsers
    return 2


if __name__ == "__main__":
    sys.exit(main())
