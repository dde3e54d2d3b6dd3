"""The service's history: one row per workload pod (keyed by the pod's UID) and one row per state
change, in SQLAlchemy 2 (SQLite by default, PostgreSQL supported); the schema is Alembic's
migrations in ``migrations/``, applied on start (``open_store``)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    and_,
    create_engine,
    func,
    or_,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from ..status import FINAL, JobStatus, deleted_status

MIGRATIONS = Path(__file__).with_name("migrations")


class Base(DeclarativeBase):
    pass


class Job(Base):
    __tablename__ = "jobs"

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

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def batch(self) -> Iterator[Session]:
        """One transaction for many ``record`` calls (a re-list of every pod)."""
        with Session(self.engine) as s, s.begin():
            yield s

    def record(
        self, w: Workload, status: JobStatus, at: datetime, session: Session | None = None
    ) -> bool:
        """Insert or update the job of ``w`` with ``status``; a state change gets a row with
        its time. Returns whether anything changed. A final state is never left again."""
        if session is None:
            with self.batch() as s:
                return _record(s, w, status, at)
        return _record(session, w, status, at)

    def end(self, uid: str, site_name: str, cancelled: bool, at: datetime) -> JobStatus | None:
        """The pod of ``uid`` is gone: its final status (its own end, cancelled, or lost)."""
        with Session(self.engine) as s, s.begin():
            job = s.get(Job, uid)
            if job is None:
                return None
            final = deleted_status(site_name, job.status(), cancelled)
            _apply(job, final, at)
            return final

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

    def ran_between(
        self,
        start: datetime,
        end: datetime,
        user: str | None = None,
        site: str | None = None,
        vo: str | None = None,
    ) -> list[Job]:
        """Jobs (one user's, or everyone's; at one site, of one VO) that were running at some
        time in [start, end): started before ``end`` and not finished before ``start``, oldest
        first."""
        q = (
            select(Job)
            .where(Job.started.is_not(None), Job.started < end)
            .where(or_(Job.finished.is_(None), Job.finished >= start))
            .order_by(Job.started, Job.uid)
        )
        for column, value in ((Job.user, user), (Job.site, site), (Job.vo, vo)):
            if value is not None:
                q = q.where(column == value)
        with Session(self.engine) as s:
            return list(s.scalars(q))

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
