"""Keeping batch cells' results (``results.py``) without a cluster: the log read as a stream in
arbitrary chunks, the payload written to the results folder and answered from there (length
and content), the states of a cell without a usable frame, the limit, and the finished pod and
its inputs Secret deleted after the grace."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from intertwin_hub.errors import ApiError
from intertwin_hub.labels import KIND_BATCH_CELL, LABEL_WORKLOAD
from intertwin_hub.offload import frame
from intertwin_hub.service import db
from intertwin_hub.service.results import EXPIRED, MISSING, STORED, Results, ResultSettings
from intertwin_hub.status import JobStatus

UID = "0b9e6f0e-0000-4000-8000-000000000001"


class Log:
    """What ``read_namespaced_pod_log(_preload_content=False)`` gives: chunks of the log."""

    def __init__(self, text: bytes, chunk: int) -> None:
        self.text, self.chunk = text, chunk
        self.content = self
        self.released = False

    async def iter_chunked(self, _n: int) -> AsyncIterator[bytes]:
        for i in range(0, len(self.text), self.chunk):
            yield self.text[i : i + self.chunk]

    def release(self) -> None:
        self.released = True


class Core:
    def __init__(self, log: bytes, chunk: int = 1000) -> None:
        self.log, self.chunk = log, chunk
        self.reads = 0
        self.deleted: list[tuple[str, str]] = []

    async def read_namespaced_pod_log(self, pod: str, ns: str, **kw: Any) -> Log:
        self.reads += 1
        return Log(self.log, self.chunk)

    async def delete_namespaced_pod(self, name: str, ns: str) -> None:
        self.deleted.append(("pod", name))

    async def delete_namespaced_secret(self, name: str, ns: str) -> None:
        self.deleted.append(("secret", name))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[db.Store]:
    s = db.open_store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    w = db.Workload(
        uid=UID,
        user="alice",
        kind=KIND_BATCH_CELL,
        site="vega",
        pod="cell-alice-1234",
        submitted=datetime.now(UTC),
    )
    s.record(w, JobStatus("succeeded", "succeeded at Vega", exit_code=0), datetime.now(UTC))
    yield s
    s.engine.dispose()


def results_for(store: db.Store, core: Core, tmp_path: Path, **settings: Any) -> Results:
    async def keep_tail(uid: str, pod: str) -> None:
        tails.add(uid)

    tails: set[str] = set()
    svc = SimpleNamespace(
        store=store,
        core=core,
        namespace="ns",
        index=SimpleNamespace(pods={UID: {}}),
        watcher=SimpleNamespace(tails=tails, keep_tail=keep_tail),
    )
    return Results(svc, ResultSettings(results_dir=str(tmp_path / "results"), **settings))  # type: ignore[arg-type]


def log_with(payload: bytes) -> bytes:
    lines = ["epoch 1", "x" * 5000, *frame.encode("ok", b"earlier"), "epoch 2"]
    lines += [f"2026-12-04T12:00:00Z {line}" for line in frame.encode("ok", payload)]
    return ("\n".join([*lines, "bye"]) + "\n").encode()


async def answer_of(results: Results, job: db.Job) -> tuple[int, bytes]:
    length, chunks = results.answer(job)
    return length, b"".join([c async for c in chunks])


@pytest.mark.asyncio
@pytest.mark.parametrize("chunk", [1, 77, 4096, 10**7])
async def test_a_result_is_kept_from_a_streamed_log_and_answered_whole(
    store: db.Store, tmp_path: Path, chunk: int
) -> None:
    payload = os.urandom(300_000 if chunk > 1 else 3000)
    core = Core(log_with(payload), chunk)
    results = results_for(store, core, tmp_path)
    job = await results.keep(UID)
    assert job is not None and job.result_state == STORED
    assert (job.result_status, job.result_bytes) == ("ok", len(payload))
    assert results.path(UID).read_bytes() == payload
    assert not list((tmp_path / "results").glob("*.part"))
    # the cell's own last lines from the same pass, without the frames
    assert db.last_lines(job) == ["epoch 1", "x" * 5000, "epoch 2", "bye"]
    length, body = await answer_of(results, await results.result_of(job))
    assert length == len(body)
    answer = json.loads(body)
    assert answer["sha256"] == frame.Frame("ok", payload).sha256
    assert frame.base64.b64decode(answer["payload"]) == payload
    # read once: asking again answers the kept result
    await results.keep(UID)
    assert core.reads == 1


@pytest.mark.asyncio
async def test_no_frame_is_a_missing_result_and_the_limit_is_told(
    store: db.Store, tmp_path: Path
) -> None:
    results = results_for(store, Core(b"killed before the end\n"), tmp_path)
    job = await results.keep(UID)
    assert job is not None and job.result_state == MISSING
    with pytest.raises(ApiError) as e:
        await results.result_of(job)
    assert (e.value.status, e.value.code) == (409, "no_result")

    store.keep_result(UID, STORED, "ok", 100 * 2**20, "0" * 64)
    job = store.get(UID)
    assert job is not None
    with pytest.raises(ApiError) as e:
        results.check_size(job, 64 * 2**20)
    assert (e.value.status, e.value.code) == (409, "result_too_large")
    assert "100.0 MiB, over the 64.0 MiB limit" in e.value.message
    assert (e.value.extra["bytes"], e.value.extra["limit"]) == (100 * 2**20, 64 * 2**20)
    results.check_size(job, 0)  # 0: whatever its size


@pytest.mark.asyncio
async def test_an_ended_cell_is_kept_then_its_pod_and_secret_deleted_after_the_grace(
    store: db.Store, tmp_path: Path
) -> None:
    core = Core(log_with(b"value"))
    results = results_for(store, core, tmp_path, finished_pod_grace=0.2)
    pod = {
        "metadata": {
            "uid": UID,
            "name": "cell-alice-1234",
            "labels": {LABEL_WORKLOAD: KIND_BATCH_CELL},
        },
        "status": {"phase": "Succeeded"},
        "spec": {"containers": [{"name": "cell"}]},
    }
    results.ended(pod)
    results.ended(pod)  # a second event while it is under way: once
    for _ in range(100):
        if core.deleted:
            break
        await asyncio.sleep(0.05)
    assert core.deleted == [("pod", "cell-alice-1234"), ("secret", "cell-alice-1234-inputs")]
    job = store.get(UID)
    assert job is not None and job.result_state == STORED and core.reads == 1


@pytest.mark.asyncio
async def test_a_huge_line_of_the_cells_own_is_skipped_not_held(
    store: db.Store, tmp_path: Path
) -> None:
    payload = os.urandom(1000)
    log = b"z" * (3 * 2**20) + b"\n" + log_with(payload)
    results = results_for(store, Core(log, 65536), tmp_path)
    job = await results.keep(UID)
    assert job is not None and job.result_state == STORED
    assert results.path(UID).read_bytes() == payload


@pytest.mark.asyncio
async def test_a_result_past_its_keeping_time_is_removed_and_asking_says_when(
    store: db.Store, tmp_path: Path
) -> None:
    payload = os.urandom(5000)
    results = results_for(store, Core(log_with(payload)), tmp_path, keep_days=30)
    await results.keep(UID)
    ended = store.get(UID)
    assert ended is not None and ended.finished is not None
    # not yet: 29 days after the cell ended
    assert results.prune(db.utc(ended.finished) + timedelta(days=29)) == 0
    assert results.path(UID).exists()
    assert results.prune(db.utc(ended.finished) + timedelta(days=31)) == 1
    assert not results.path(UID).exists()
    job = store.get(UID)
    assert job is not None and job.result_state == EXPIRED and job.result_bytes == len(payload)
    with pytest.raises(ApiError) as gone:
        await results.result_of(job)
    assert gone.value.status == 410
    assert "kept for 30 days after the cell ended, removed on" in gone.value.message
    # removed once: a later pass finds nothing to do
    assert results.prune(db.utc(ended.finished) + timedelta(days=60)) == 0


@pytest.mark.asyncio
async def test_no_keeping_time_keeps_results(store: db.Store, tmp_path: Path) -> None:
    results = results_for(store, Core(log_with(b"x" * 100)), tmp_path, keep_days=0)
    await results.keep(UID)
    assert results.prune(datetime.now(UTC) + timedelta(days=3650)) == 0
    assert results.path(UID).exists()
