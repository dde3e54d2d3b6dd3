"""The service's history: one row per workload pod (keyed by the pod's UID) and one row per state
change, in SQLAlchemy 2 (SQLite by default, PostgreSQL supported); the schema is Alembic's
migrations in ``migrations/``, applied on start (``open_store``).

Beside it, the usage ledger: one row per workload pod that ran (``usage_ledger``, keyed by the
pod's UID, so a re-read or a restart never counts a pod twice), and its per-day rollup
(``usage_daily``: one row per user, site, VO, GPU model and UTC day, each pod's allocation cut at
the day's edges to the second), both written in the same transaction as the history row. A
ledger row is closed once, with the pod's own end; a row closed with an estimated end (the pod
vanished while nobody watched) is corrected if the real end turns up later. Open rows are not in
the rollup: they accrue up to the moment they are read (``intertwin_hub.usage.ledger``)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    and_,
    create_engine,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from ..status import FINAL, LOST, RUNNING, JobStatus, deleted_status

MIGRATIONS = Path(__file__).with_name("migrations")


class Base(DeclarativeBase):
    pass


class Job(Base):
    __tablename__ = "jobs"
    # a site's batch job by its id (the Slurm accounting import)
    __table_args__ = (Index("ix_jobs_site_batch_job", "site", "batch_job"),)

    uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    user: Mapped[str] = mapped_column(String(255), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    site: Mapped[str] = mapped_column(String(64))
    pod: Mapped[str] = mapped_column(String(253))
    server_name: Mapped[str] = mapped_column(String(255), default="")
    notebook_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    cell_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    state: Mapped[str] = mapped_column(String(32), index=True)
    sentence: Mapped[str] = mapped_column(Text)
    node: Mapped[str | None] = mapped_column(String(253), nullable=True)
    batch_job: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cpu: Mapped[float | None] = mapped_column(Float, nullable=True)
    memory: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    image: Mapped[str | None] = mapped_column(Text, nullable=True)
    vo: Mapped[str | None] = mapped_column(String(255), nullable=True)
    submitted: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    started: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # the log's last lines, fetched once the workload ended (its log goes with its pod)
    last_lines: Mapped[str | None] = mapped_column(Text, nullable=True)
    # a batch cell's result, taken from its log once it ended (results.py): "stored" (the
    # payload is in the service's results folder), "missing" (no frame in the log), "corrupt"
    result_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    result_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    result_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    result_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    result_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    history: Mapped[list[StateChange]] = relationship(
        back_populates="job",
        order_by="StateChange.id",
        cascade="all, delete-orphan",
        lazy="selectin",
    )

    def status(self) -> JobStatus:
        return JobStatus(
            self.state,
            self.sentence,
            node=self.node,
            batch_job=self.batch_job,
            reason=self.reason,
            exit_code=self.exit_code,
        )


class StateChange(Base):
    __tablename__ = "state_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_uid: Mapped[str] = mapped_column(ForeignKey("jobs.uid", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    job: Mapped[Job] = relationship(back_populates="history")


class LedgerRow(Base):
    """What one workload pod was allocated and for how long. ``started_at``/``ended_at`` are the
    pod's own (its containers' ``startedAt``/``finishedAt``) when the pod tells them, else when
    the service saw it start or end; ``ended_at`` is NULL while it runs. The figures are up to
    ``ended_at`` (zero while open). ``measured_*``: the site's own accounting of the pod's batch
    job (Slurm's, ``intertwin-hub usage import-slurm``, ``usage/slurm.py``), kept beside the
    allocated figures, never mixed into them; NULL where the site measured nothing."""

    __tablename__ = "usage_ledger"
    __table_args__ = (
        Index("ix_usage_ledger_user_ended", "user", "ended_at"),
        Index("ix_usage_ledger_site_vo_ended", "site", "vo", "ended_at"),
        Index("ix_usage_ledger_ended", "ended_at"),
    )

    uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    user: Mapped[str] = mapped_column(String(255))
    vo: Mapped[str | None] = mapped_column(String(255), nullable=True)
    site: Mapped[str] = mapped_column(String(64))
    node: Mapped[str | None] = mapped_column(String(253), nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    pod: Mapped[str] = mapped_column(String(253))
    image: Mapped[str | None] = mapped_column(Text, nullable=True)
    # what the figures multiply: the limits, else the requests (as the history's resources)
    cpu: Mapped[float | None] = mapped_column(Float, nullable=True)
    memory: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    cpu_request: Mapped[float | None] = mapped_column(Float, nullable=True)
    cpu_limit: Mapped[float | None] = mapped_column(Float, nullable=True)
    memory_request: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    memory_limit: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    gpu_model: Mapped[str | None] = mapped_column(String(255), nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # the last time the service saw the pod alive: the best known end of one that vanished
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    wall_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    cpu_core_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    memory_gb_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    # the end is the best known, not observed (closed by a restart or a vanished pod)
    estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    measured_cpu_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    measured_max_rss_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    measured_source: Mapped[str | None] = mapped_column(String(64), nullable=True)
    measured_wall_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)


class DailyUse(Base):
    """The closed ledger rows' allocation per user, site, VO, GPU model and UTC day, cut at the
    day's edges to the second (``vo`` and ``gpu_model`` are "" for none). ``jobs``: pods that ran
    in the day; ``started``: those of them that started in it (a period's job count is its first
    day's ``jobs`` plus the later days' ``started``); ``estimated``: how many have an estimated
    end."""

    __tablename__ = "usage_daily"
    __table_args__ = (
        Index("ix_usage_daily_site_vo_day", "site", "vo", "day"),
        Index("ix_usage_daily_day", "day"),
    )

    user: Mapped[str] = mapped_column(String(255), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    vo: Mapped[str] = mapped_column(String(255), primary_key=True)
    gpu_model: Mapped[str] = mapped_column(String(255), primary_key=True)
    wall_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    cpu_core_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    memory_gb_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    jobs: Mapped[int] = mapped_column(Integer, default=0)
    started: Mapped[int] = mapped_column(Integer, default=0)
    estimated: Mapped[int] = mapped_column(Integer, default=0)


@dataclass(frozen=True)
class Workload:
    """What the service knows of a workload pod besides its status (read by ``watch``)."""

    uid: str
    user: str
    kind: str
    site: str
    pod: str
    submitted: datetime
    server_name: str = ""
    notebook_path: str | None = None
    cell_id: str | None = None
    cpu: float | None = None
    memory: int | None = None
    gpus: int = 0
    image: str | None = None
    vo: str | None = None


@dataclass(frozen=True)
class PodFacts:
    """What the pod itself tells of its run, for the ledger (read by ``index.pod_facts``)."""

    started: datetime | None = None  # the earliest container start
    finished: datetime | None = None  # the latest container end, once every one has ended
    cpu_request: float | None = None
    cpu_limit: float | None = None
    memory_request: int | None = None
    memory_limit: int | None = None


@dataclass(frozen=True)
class Filters:
    site: str | None = None
    states: frozenset[str] | None = None
    kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class CursorError(ValueError):
    pass


def encode_cursor(job: Job) -> str:
    raw = json.dumps([_utc(job.submitted).isoformat(), job.uid]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, uid = json.loads(raw)
        return datetime.fromisoformat(at), str(uid)
    except Exception as e:
        raise CursorError("this cursor is not one this API gave out") from e


def _utc(t: datetime) -> datetime:
    # SQLite hands back naive datetimes; every time stored here is UTC
    return t if t.tzinfo else t.replace(tzinfo=UTC)


utc = _utc


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


class Store:
    """The history database."""

    def __init__(self, engine: Engine, gpu_models: dict[str, str] | None = None) -> None:
        self.engine = engine
        # the GPU model of each site (catalogue slug), written into the ledger's rows
        self.gpu_models: dict[str, str] = dict(gpu_models or {})

    @contextmanager
    def batch(self) -> Iterator[Session]:
        """One transaction for many ``record`` calls (a re-list of every pod)."""
        with Session(self.engine) as s, s.begin():
            yield s

    def record(
        self,
        w: Workload,
        status: JobStatus,
        at: datetime,
        session: Session | None = None,
        facts: PodFacts | None = None,
    ) -> bool:
        """Insert or update the job of ``w`` with ``status``; a state change gets a row with
        its time. Returns whether anything changed. A final state is never left again. The
        ledger row of a pod that runs or ran is written in the same transaction (``facts``:
        the pod's own times and resources, else ``at`` stands for the times)."""
        if session is None:
            with self.batch() as s:
                return self._record(s, w, status, at, facts)
        return self._record(session, w, status, at, facts)

    def _record(
        self, s: Session, w: Workload, status: JobStatus, at: datetime, facts: PodFacts | None
    ) -> bool:
        changed = _record(s, w, status, at)
        # a pod told again as it was (the common event) changes no ledger row: its row was
        # written with the change that made it running; a final status may still correct an
        # estimated end
        if changed or status.final:
            _ledger_observe(s, w, status, at, facts or PodFacts(), self.gpu_models.get(w.site))
        return changed

    def end(
        self, uid: str, site_name: str, cancelled: bool, at: datetime, unseen: bool = False
    ) -> JobStatus | None:
        """The pod of ``uid`` is gone: its final status (its own end, cancelled, or lost).
        ``unseen``: it went while nobody watched (found missing by a fresh list), so its
        ledger row is closed at the last time it was seen alive, marked estimated."""
        with Session(self.engine) as s, s.begin():
            job = s.get(Job, uid)
            if job is None:
                return None
            final = deleted_status(site_name, job.status(), cancelled)
            _apply(job, final, at)
            row = s.get(LedgerRow, uid)
            if row is not None and (row.ended_at is None or row.estimated):
                end = _utc(row.last_seen) if unseen else at
                _close(s, row, end, estimated=unseen or final.state == LOST)
            return final

    def seen_alive(self, uids: Iterable[str], at: datetime) -> None:
        """The pods of ``uids`` were seen alive at ``at``: their open ledger rows' best known
        end moves there (one UPDATE per 500 pods)."""
        todo = list(uids)
        with Session(self.engine) as s, s.begin():
            for i in range(0, len(todo), 500):
                s.execute(
                    update(LedgerRow)
                    .where(LedgerRow.uid.in_(todo[i : i + 500]), LedgerRow.ended_at.is_(None))
                    .values(last_seen=at)
                )

    def keep_last_lines(self, uid: str, text: str) -> bool:
        """Store the last lines of ``uid``'s log; False if there is no such job."""
        with Session(self.engine) as s, s.begin():
            job = s.get(Job, uid)
            if job is None:
                return False
            job.last_lines = text
            return True

    def keep_result(
        self,
        uid: str,
        state: str,
        status: str | None = None,
        size: int | None = None,
        sha256: str | None = None,
        note: str | None = None,
    ) -> bool:
        """Record what became of ``uid``'s result; False if there is no such job."""
        with Session(self.engine) as s, s.begin():
            job = s.get(Job, uid)
            if job is None:
                return False
            job.result_state, job.result_status = state, status
            job.result_bytes, job.result_sha256, job.result_note = size, sha256, note
            return True

    def results_finished_before(self, cutoff: datetime) -> list[Job]:
        """Jobs with a kept result whose cell ended before ``cutoff``."""
        with Session(self.engine, expire_on_commit=False) as s:
            return list(
                s.scalars(select(Job).where(Job.result_state == "stored", Job.finished < cutoff))
            )

    def active_uids(self) -> set[str]:
        with Session(self.engine) as s:
            return set(s.scalars(select(Job.uid).where(Job.state.not_in(FINAL))))

    def get(self, uid: str) -> Job | None:
        with Session(self.engine, expire_on_commit=False) as s:
            return s.get(Job, uid)

    def page(
        self, user: str | None, filters: Filters, limit: int, cursor: str | None
    ) -> tuple[Sequence[Job], str | None]:
        """Newest first by (submitted, uid); ``user`` None: everyone's."""
        q = select(Job)
        conds: list[Any] = []
        if user is not None:
            conds.append(Job.user == user)
        if filters.site:
            conds.append(Job.site == filters.site)
        if filters.kind:
            conds.append(Job.kind == filters.kind)
        if filters.states:
            conds.append(Job.state.in_(filters.states))
        if filters.until:
            conds.append(Job.submitted < filters.until)
        if filters.since:
            conds.append(or_(Job.finished.is_(None), Job.finished >= filters.since))
        if cursor:
            at, uid = decode_cursor(cursor)
            conds.append(or_(Job.submitted < at, and_(Job.submitted == at, Job.uid < uid)))
        q = q.where(*conds).order_by(Job.submitted.desc(), Job.uid.desc()).limit(limit + 1)
        with Session(self.engine, expire_on_commit=False) as s:
            rows = list(s.scalars(q))
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (encode_cursor(rows[-1]) if more and rows else None)

    def count(self) -> int:
        with Session(self.engine) as s:
            return s.scalar(select(func.count()).select_from(Job)) or 0


def _record(s: Session, w: Workload, status: JobStatus, at: datetime) -> bool:
    job = s.get(Job, w.uid)
    if job is None:
        job = Job(**asdict(w), state="", sentence="")
        s.add(job)
    elif job.state in FINAL:
        return False
    return _apply(job, status, at)


def _apply(job: Job, status: JobStatus, at: datetime) -> bool:
    new = asdict(status)
    changed = any(getattr(job, k) != v for k, v in new.items())
    if job.state != status.state:
        job.history.append(StateChange(state=status.state, at=at))
        if status.state == "running" and job.started is None:
            job.started = at
        if status.state in FINAL:
            job.finished = at
    for k, v in new.items():
        setattr(job, k, v)
    return changed


# --- the usage ledger ----------------------------------------------------------------------


def _ledger_observe(
    s: Session,
    w: Workload,
    status: JobStatus,
    at: datetime,
    facts: PodFacts,
    gpu_model: str | None,
) -> None:
    """A running pod gets its open row (once: a late or repeated event changes nothing but the
    node); an ended one has its row closed with its own end. A pod that never ran has none."""
    if status.state != RUNNING and status.state not in FINAL:
        return
    row = s.get(LedgerRow, w.uid)
    if row is None:
        start = facts.started or (at if status.state == RUNNING else None)
        if start is None:
            return  # ended without ever running (refused, cancelled while queued)
        row = LedgerRow(
            uid=w.uid,
            user=w.user,
            vo=w.vo,
            site=w.site,
            node=status.node,
            kind=w.kind,
            pod=w.pod,
            image=w.image,
            cpu=w.cpu,
            memory=w.memory,
            cpu_request=facts.cpu_request,
            cpu_limit=facts.cpu_limit,
            memory_request=facts.memory_request,
            memory_limit=facts.memory_limit,
            gpus=w.gpus,
            gpu_model=gpu_model if w.gpus else None,
            started_at=_utc(start),
            ended_at=None,
            last_seen=at,
            wall_seconds=0.0,
            cpu_core_seconds=0.0,
            memory_gb_seconds=0.0,
            gpu_seconds=0.0,
            estimated=False,
        )
        s.add(row)
    elif status.node and row.node != status.node and row.ended_at is None:
        row.node = status.node
    if status.state in FINAL:
        end = facts.finished or at
        _close(s, row, _utc(end), estimated=status.state == LOST)


def _close(s: Session, row: LedgerRow, end: datetime, estimated: bool) -> None:
    """Close ``row`` at ``end`` and add its days to the rollup. A closed row stays as it is,
    except that an estimated end gives way to an observed one."""
    if row.ended_at is not None:
        if not row.estimated or estimated:
            return
        _add_days(s, row, -1)  # the estimate out, the observed end in
    start = _utc(row.started_at)
    end = max(_utc(end), start)
    wall = (end - start).total_seconds()
    row.ended_at = end
    row.estimated = estimated
    row.wall_seconds = wall
    row.cpu_core_seconds = (row.cpu or 0.0) * wall
    row.memory_gb_seconds = (row.memory or 0) / 1e9 * wall
    row.gpu_seconds = row.gpus * wall
    _add_days(s, row, 1)


def day_pieces(start: datetime, end: datetime) -> Iterator[tuple[date, datetime, datetime]]:
    """(UTC day, from, to) for each day [start, end) touches, cut at the days' edges."""
    t = datetime(start.year, start.month, start.day, tzinfo=UTC)
    while t < end:
        nxt = t + timedelta(days=1)
        a, b = max(t, start), min(nxt, end)
        if b > a:
            yield t.date(), a, b
        t = nxt


def _add_days(s: Session, row: LedgerRow, sign: int) -> None:
    """Add (``sign`` 1) or take out (-1) a closed row's allocation, day by day."""
    start = _utc(row.started_at)
    end = _utc(row.ended_at or start)
    cpu, gb, gpus = row.cpu or 0.0, (row.memory or 0) / 1e9, row.gpus
    for day, a, b in day_pieces(start, end):
        secs = (b - a).total_seconds() * sign
        key = {
            "user": row.user,
            "day": day,
            "site": row.site,
            "vo": row.vo or "",
            "gpu_model": (row.gpu_model or "") if gpus else "",
        }
        d = s.get(DailyUse, key)
        if d is None:
            d = DailyUse(
                **key,
                wall_seconds=0.0,
                cpu_core_seconds=0.0,
                memory_gb_seconds=0.0,
                gpu_seconds=0.0,
                jobs=0,
                started=0,
                estimated=0,
            )
            s.add(d)
        d.wall_seconds += secs
        d.cpu_core_seconds += cpu * secs
        d.memory_gb_seconds += gb * secs
        d.gpu_seconds += gpus * secs
        d.jobs += sign
        d.started += sign if a == start else 0
        d.estimated += sign if row.estimated else 0


def open_store(url: str) -> Store:
    """Connect and bring the schema to the newest migration."""
    engine = create_engine(url, future=True)
    cfg = alembic_config(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return Store(engine)


def last_lines(job: Job) -> list[str] | None:
    """The kept last lines of the job's log, None when none were kept."""
    return None if job.last_lines is None else job.last_lines.splitlines()


def job_json(job: Job, site_name: str, note: str | None = None) -> dict[str, Any]:
    def t(v: datetime | None) -> str | None:
        return _utc(v).isoformat() if v else None

    return {
        "id": job.uid,
        "user": job.user,
        "kind": job.kind,
        "site": job.site,
        "site_name": site_name,
        "pod": job.pod,
        "server_name": job.server_name,
        "notebook_path": job.notebook_path,
        "cell_id": job.cell_id,
        "state": job.state,
        "sentence": job.sentence,
        "node": job.node,
        "batch_job": job.batch_job,
        "reason": job.reason,
        "exit_code": job.exit_code,
        "note": note,
        "resources": {"cpu": job.cpu, "memory": job.memory, "gpus": job.gpus},
        "image": job.image,
        "submitted": t(job.submitted),
        "started": t(job.started),
        "finished": t(job.finished),
        "history": [{"state": h.state, "at": t(h.at)} for h in job.history],
    }
