"""The ``intertwin-hub`` command: operator tools that need no running hub.

``intertwin-hub catalogue check FILE`` validates a site catalogue as the hub does at start-up
and prints the error with the key at fault, or a summary of the sites.

``intertwin-hub usage apel --db URL --site-name NAME --from DAY --to DAY --out DIR`` writes the
period's APEL records (cloud, and accelerator for GPUs) from the hub service's history into the
queue directory an APEL SSM sender reads.

``intertwin-hub usage import-slurm --db URL --site SITE FILE...`` fills the usage ledger's
measured columns from a Slurm site's accounting: sacct output or a jobcomp/filetxt log
(``intertwin_hub/usage/slurm.py``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

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
    catalogue = load_catalogue(path)
    print(f"{path}: {len(catalogue)} sites, valid")
    for site in catalogue:
        print(_summary(site))
    return 0


def usage_apel(args: argparse.Namespace) -> int:
    from .service.db import open_store  # the hub extra's SQLAlchemy, only for this command
    from .usage.apel import Origin
    from .usage.report import parse_day, write_apel

    try:
        start, end = parse_day(args.start), parse_day(args.end)
    except ValueError as e:
        print(f"error: {e}; write days as 2026-11-01", file=sys.stderr)
        return 2
    if end <= start:
        print("error: --to must be after --from", file=sys.stderr)
        return 2
    catalogue = load_catalogue(args.catalogue)
    origin = Origin(site_name=args.site_name, user_names=not args.no_user_names)
    cloud, gpu = write_apel(open_store(args.db), catalogue, origin, start, end, Path(args.out))
    print(
        f"{_count(cloud, 'cloud record')} and {_count(gpu, 'accelerator record')} "
        f"for {start:%Y-%m-%d} to {end:%Y-%m-%d} written to {args.out}"
    )
    return 0


def usage_import_slurm(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from .service.db import open_store  # the hub extra's SQLAlchemy, only for this command
    from .usage.slurm import RANK, SlurmFormatError, SlurmJob, import_measured, parse

    try:
        tz = ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        print(f"error: no time zone {args.timezone!r} (e.g. Europe/Ljubljana)", file=sys.stderr)
        return 2
    catalogue = load_catalogue(args.catalogue)
    if catalogue.get(args.site) is None:
        known = ", ".join(s.slug for s in catalogue)
        print(f"error: no site {args.site!r} in the catalogue (sites: {known})", file=sys.stderr)
        return 2
    fields = args.format.split(",") if args.format else None
    measured: dict[str, SlurmJob] = {}
    for name in args.files:
        try:
            text = Path(name).read_text(encoding="utf-8", errors="replace")
            for job, m in parse(text, tz, fields).items():
                # a job in both a sacct file and a jobcomp log: sacct's figures
                if job not in measured or RANK[m.source] >= RANK[measured[job].source]:
                    measured[job] = m
        except OSError as e:
            print(f"error: {name}: {e.strerror or e}", file=sys.stderr)
            return 1
        except (SlurmFormatError, ValueError) as e:
            print(f"error: {name}: {e}", file=sys.stderr)
            return 1
    sources = sorted({m.source for m in measured.values()})
    done = import_measured(open_store(args.db), args.site, measured)
    print(
        f"{args.site}: {_count(done.jobs, 'ended job')} read ({', '.join(sources) or 'none'}); "
        f"{_count(done.filled, 'ledger row')} measured ({done.changed} changed)"
        + (f", {done.kept} kept with sacct's figures" if done.kept else "")
        + f", {_count(len(done.unknown), 'unknown job id')}"
        + (f": {', '.join(done.unknown[:20])}" if done.unknown else "")
        + (" ..." if len(done.unknown) > 20 else "")
    )
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
    usage = commands.add_parser("usage", help="usage records")
    usage_what = usage.add_subparsers(dest="action", required=True)
    apel = usage_what.add_parser(
        "apel", help="write a period's APEL records into an SSM sender's queue directory"
    )
    apel.add_argument("--db", required=True, help="the intertwin service's database URL")
    apel.add_argument("--site-name", required=True, help="the hub cluster's GOCDB site name")
    apel.add_argument("--from", dest="start", required=True, help="first day (2026-11-01)")
    apel.add_argument("--to", dest="end", required=True, help="day after the last (2026-12-01)")
    apel.add_argument("--out", required=True, help="the SSM sender's outgoing queue directory")
    apel.add_argument("--catalogue", help="the site catalogue, if not the shipped one")
    apel.add_argument(
        "--no-user-names",
        action="store_true",
        help="leave GlobalUserName out (user names are personal data leaving the site)",
    )
    slurm = usage_what.add_parser(
        "import-slurm",
        help="fill the ledger's measured columns from a Slurm site's accounting",
        description=(
            "Reads sacct output (sacct --parsable2 --noheader "
            "--format=JobID,JobName,State,Start,End,ElapsedRaw,TotalCPU,MaxRSS,AllocTRES; "
            "with a header line, or another format named by --format) or a jobcomp/filetxt "
            "log (JobCompLoc of JobCompType=jobcomp/filetxt), and fills the measured CPU "
            "seconds, peak RSS, wall seconds and source of the ledger rows of SITE whose "
            "batch job id matches. The allocated figures are never changed; importing again "
            "changes nothing; job ids the ledger does not know are counted, not errors."
        ),
    )
    slurm.add_argument("--db", required=True, help="the intertwin service's database URL")
    slurm.add_argument("--site", required=True, help="the catalogue slug of the site (vega)")
    slurm.add_argument(
        "--format",
        help="the --format sacct ran with, if not the one above and the file has no header",
    )
    slurm.add_argument(
        "--timezone",
        default="UTC",
        help="the time zone of the site's Slurm (its times carry none; default UTC)",
    )
    slurm.add_argument("--catalogue", help="the site catalogue, if not the shipped one")
    slurm.add_argument("files", nargs="+", metavar="FILE", help="sacct output or jobcomp log")
    args = parser.parse_args(argv)
    try:
        if args.command == "catalogue" and args.action == "check":
            return catalogue_check(args.file)
        if args.command == "usage" and args.action == "apel":
            return usage_apel(args)
        if args.command == "usage" and args.action == "import-slurm":
            return usage_import_slurm(args)
    except CatalogueError as e:  # every command reads the catalogue; its error is one line
        print(f"error: {e}", file=sys.stderr)
        return 1
    parser.error("unknown command")  # argparse exits; unreachable with required subparsers
    return 2


if __name__ == "__main__":
    sys.exit(main())
