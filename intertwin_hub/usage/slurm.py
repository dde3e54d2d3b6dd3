"""A Slurm site's own accounting of its jobs, into the usage ledger's measured columns
(``intertwin-hub usage import-slurm``).

Two inputs, both what a site can export without running anything of ours:

- ``sacct --parsable2 --noheader --format=JobID,JobName,State,Start,End,ElapsedRaw,TotalCPU,
  MaxRSS,AllocTRES`` (``SACCT_FORMAT``; another ``--format`` works if it has ``JobID`` and
  ``State``, and the header line of ``sacct --parsable2`` without ``--noheader`` names the
  fields itself). SlurmJob: CPU time (``TotalCPU``, user + system), peak resident memory
  (``MaxRSS``) and wall time (``ElapsedRaw``, else ``Elapsed``). ``CPUTimeRAW`` is not
  measured (it is the elapsed time times the allocated CPUs) and is not read.
- the job completion log of ``JobCompType=jobcomp/filetxt`` (one ``Key=value`` line per
  ended job; https://slurm.schedmd.com/slurm.conf.html#OPT_JobCompType). It has the job's
  start and end, hence its wall time, and nothing measured about CPU or memory.

A job's figures: the CPU time of its steps (``123.batch``, ``123.extern``, ``123.0``) summed,
or the job's own line's when it has no step lines (sacct's job line already totals its steps,
so it is never added to them); the largest ``MaxRSS`` of any of its lines; the wall time of its
own line. Only ended jobs count (the states APEL's Slurm parser takes as "stopped and used
resources", plus Slurm's later ``OUT_OF_MEMORY``, ``DEADLINE`` and ``BOOT_FAIL``). As in APEL's
parser, times without a zone are the site's local time, ``TotalCPU`` is ``[d-]h:m:s`` or
``m:s.s``, and ``MaxRSS`` has a ``K``/``M``/``G``/``T``/``P`` suffix in powers of 1024
(https://github.com/apel/apel/blob/master/apel/parsers/slurm.py, ``parse_time`` in
https://github.com/apel/apel/blob/master/apel/common/datetime_utils.py). APEL's parser makes one
record per line (a job and each of its steps); the ledger keeps one row per pod, hence the sums.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..service.db import Job, LedgerRow, Store, _utc

SACCT_FORMAT = "JobID,JobName,State,Start,End,ElapsedRaw,TotalCPU,MaxRSS,AllocTRES"
SACCT = "slurm-sacct"
JOBCOMP = "slurm-jobcomp"
# a richer source is never replaced by a poorer one (jobcomp measures no CPU or memory)
RANK = {JOBCOMP: 1, SACCT: 2}
# the states of a job that ended having held its resources: APEL's Slurm parser's ("CANCELLED",
# "COMPLETED", "FAILED", "NODE_FAIL", "PREEMPTED", "TIMEOUT") and Slurm's later ones
ENDED = frozenset(
    {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL"}
    | {"OUT_OF_MEMORY", "PREEMPTED", "TIMEOUT"}
)
_MEMORY_UNITS = {"K": 1, "M": 2, "G": 3, "T": 4, "P": 5}


class SlurmFormatError(ValueError):
    """An input that is neither sacct's nor jobcomp's, or lacks a field we need."""


@dataclass(frozen=True)
class SlurmJob:
    """What the site measured of one ended batch job."""

    job: str  # Slurm's job id (the allocation's, without a step)
    source: str  # SACCT or JOBCOMP
    state: str
    start: datetime | None
    end: datetime | None
    wall_seconds: float | None
    cpu_seconds: float | None = None
    max_rss_bytes: int | None = None


def parse_duration(text: str) -> float:
    """Seconds of a Slurm duration: ``[d-]h:m:s``, ``m:s`` or ``m:s.s`` (sacct's TotalCPU
    under an hour), as APEL's ``parse_time`` reads them (but keeping the fraction)."""
    days, _, rest = text.strip().rpartition("-")
    parts = rest.split(":")
    if not 2 <= len(parts) <= 3:
        raise ValueError(f"not a Slurm duration: {text!r}")
    h, m, s = ([0.0] if len(parts) == 2 else []) + [float(p) for p in parts]
    return 86400 * int(days or 0) + 3600 * h + 60 * m + s


def parse_memory(text: str) -> int | None:
    """Bytes of a sacct memory figure (``MaxRSS``): a number with a K/M/G/T/P suffix in powers
    of 1024 (APEL's ``_normalise_memory``); plain digits are bytes; empty is unknown."""
    text = text.strip()
    if not text:
        return None
    unit = text[-1].upper()
    if unit in _MEMORY_UNITS:
        return int(float(text[:-1]) * 1024 ** _MEMORY_UNITS[unit])
    return int(float(text))


def parse_time(text: str, tz: tzinfo) -> datetime | None:
    """A Slurm time (``2026-12-04T21:27:24``, in the site's local time) as an aware datetime;
    None for Slurm's unknown (``Unknown``, ``None``, empty)."""
    text = text.strip()
    if not text or text in ("Unknown", "None", "(null)"):
        return None
    t = datetime.fromisoformat(text)
    return t if t.tzinfo else t.replace(tzinfo=tz)


def detect(lines: Sequence[str]) -> str:
    """JOBCOMP or SACCT, from the first line that is not empty."""
    first = next((ln for ln in lines if ln.strip()), "")
    if first.startswith("JobId="):
        return JOBCOMP
    if "|" in first:
        return SACCT
    raise SlurmFormatError(
        "neither sacct --parsable2 output (fields split by |) nor a jobcomp/filetxt log "
        "(lines starting JobId=)"
    )


def parse_jobcomp(lines: Iterable[str], tz: tzinfo) -> dict[str, SlurmJob]:
    """The ended jobs of a ``jobcomp/filetxt`` log, by job id. Values have no spaces in this
    log except in ``Name`` and ``WorkDir`` (whose rest is taken up to the next ``Key=``)."""
    found: dict[str, SlurmJob] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        values = _key_values(line)
        if "JobId" not in values or "JobState" not in values:
            raise SlurmFormatError(f"line {n} is not a jobcomp/filetxt line: {line[:80]!r}")
        state = values["JobState"].split()[0]
        if state not in ENDED:
            continue
        start = parse_time(values.get("StartTime", ""), tz)
        end = parse_time(values.get("EndTime", ""), tz)
        wall = max(0.0, (end - start).total_seconds()) if start and end else None
        # a later line of the same job (a requeued one) is its last run
        found[values["JobId"]] = SlurmJob(values["JobId"], JOBCOMP, state, start, end, wall)
    return found


def _key_values(line: str) -> dict[str, str]:
    values: dict[str, str] = {}
    key = None
    for word in line.rstrip("\n").split(" "):
        k, eq, v = word.partition("=")
        if eq and k.isalnum():
            key = k
            values[key] = v
        elif key is not None:
            values[key] += " " + word  # a value with a space (a job name)
    return {k: v.strip() for k, v in values.items()}


@dataclass
class _Job:
    own: dict[str, str] | None = None
    steps: list[dict[str, str]] = field(default_factory=list)


def parse_sacct(
    lines: Iterable[str], tz: tzinfo, fields: Sequence[str] | None = None
) -> dict[str, SlurmJob]:
    """The ended jobs of ``sacct --parsable2`` output, by job id. ``fields``: the ``--format``
    sacct was run with (``SACCT_FORMAT`` by default); a header line, if there is one, names them
    instead."""
    names = [f.strip() for f in (fields or SACCT_FORMAT.split(","))]
    jobs: dict[str, _Job] = {}
    for n, line in enumerate(lines, 1):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        cells = line.split("|")
        if cells[0] == "JobID":
            names = cells
            continue
        _require(names)
        if len(cells) != len(names):
            raise SlurmFormatError(
                f"line {n} has {len(cells)} fields where the format has {len(names)} "
                f"({','.join(names)}): give sacct's --format with --format"
            )
        row = dict(zip(names, cells, strict=True))
        job, dot, _step = row["JobID"].partition(".")
        entry = jobs.setdefault(job, _Job())
        if dot:
            entry.steps.append(row)
        else:
            entry.own = row
    found = {}
    for job, entry in jobs.items():
        m = _sacct_job(job, entry, tz)
        if m is not None:
            found[job] = m
    return found


def _require(names: Sequence[str]) -> None:
    missing = [f for f in ("JobID", "State") if f not in names]
    if missing:
        raise SlurmFormatError(f"the sacct format lacks {', '.join(missing)}")
    if not {"TotalCPU", "MaxRSS", "ElapsedRaw", "Elapsed"} & set(names):
        raise SlurmFormatError(
            "the sacct format has nothing measured: give TotalCPU, MaxRSS or ElapsedRaw"
        )


def _sacct_job(job: str, entry: _Job, tz: tzinfo) -> SlurmJob | None:
    own = entry.own
    if own is None:
        return None  # steps without their job (cut at the file's start): the total is unknown
    state = own["State"].split()[0]  # "CANCELLED by 0"
    if state not in ENDED:
        return None
    lines = entry.steps or [own]
    cpus = [parse_duration(r["TotalCPU"]) for r in lines if r.get("TotalCPU", "").strip()]
    rss = [b for r in [own, *entry.steps] if (b := parse_memory(r.get("MaxRSS", ""))) is not None]
    if own.get("ElapsedRaw", "").strip():
        wall: float | None = float(own["ElapsedRaw"])
    elif own.get("Elapsed", "").strip():
        wall = parse_duration(own["Elapsed"])
    else:
        wall = None
    return SlurmJob(
        job,
        SACCT,
        state,
        parse_time(own.get("Start", ""), tz),
        parse_time(own.get("End", ""), tz),
        wall,
        round(sum(cpus), 3) if cpus else None,  # sacct gives milliseconds
        max(rss) if rss else None,
    )


def parse(
    text: str, tz: tzinfo | None = None, fields: Sequence[str] | None = None
) -> dict[str, SlurmJob]:
    """Either input, told apart by its first line."""
    tz = tz or ZoneInfo("UTC")
    lines = text.splitlines()
    if detect(lines) == JOBCOMP:
        return parse_jobcomp(lines, tz)
    return parse_sacct(lines, tz, fields)


@dataclass
class Imported:
    """What an import did: ``filled`` ledger rows got (or already had) the figures; ``kept``
    rows already had a richer source's; ``unknown`` job ids match no pod of the site that
    ran (a job of someone else, or one the hub never saw running)."""

    jobs: int = 0
    filled: int = 0
    changed: int = 0
    kept: int = 0
    unknown: list[str] = field(default_factory=list)


def import_measured(store: Store, site: str, measured: dict[str, SlurmJob]) -> Imported:
    """Fill the measured columns of the ledger rows of ``site`` whose batch job is a job of
    ``measured``. Only the ``measured_*`` columns are written: the allocated figures, the
    rollup and the row's times stay as they are. Re-importing the same jobs changes nothing.
    Slurm reuses job ids (after its state is reset), so where one id matches several pods,
    the one that started nearest the job's start is taken."""
    out = Imported(jobs=len(measured))
    ids = sorted(measured)
    with Session(store.engine) as s, s.begin():
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            q = (
                select(Job.batch_job, LedgerRow)
                .join(LedgerRow, LedgerRow.uid == Job.uid)
                .where(Job.site == site, Job.batch_job.in_(chunk))
            )
            rows: dict[str, list[LedgerRow]] = {}
            for job_id, row in s.execute(q):
                rows.setdefault(str(job_id), []).append(row)
            for job_id in chunk:
                m = measured[job_id]
                candidates = rows.get(job_id)
                if not candidates:
                    out.unknown.append(job_id)
                    continue
                row = min(candidates, key=lambda r: _distance(r, m))
                if RANK.get(row.measured_source or "", 0) > RANK[m.source]:
                    out.kept += 1
                    continue
                out.filled += 1
                out.changed += _fill(row, m)
    return out


def _distance(row: LedgerRow, m: SlurmJob) -> float:
    if m.start is None:
        return 0.0
    return abs((_utc(row.started_at) - m.start).total_seconds())


def _fill(row: LedgerRow, m: SlurmJob) -> bool:
    new = {
        "measured_cpu_seconds": m.cpu_seconds,
        "measured_max_rss_bytes": m.max_rss_bytes,
        "measured_wall_seconds": m.wall_seconds,
        "measured_source": m.source,
    }
    if all(getattr(row, k) == v for k, v in new.items()):
        return False
    for k, v in new.items():
        setattr(row, k, v)
    return True
