"""Job records survive a restart of the plugin: what is saved is what comes back."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from testbed.local_plugin.records import (
    CTR_RUNNING,
    RUNNING,
    ContainerRecord,
    Job,
    atomic_write,
)


def test_a_job_round_trips_through_its_json(tmp_path: Path) -> None:
    job = Job(
        uid="u-1",
        name="jupyter-ana",
        namespace="jhub",
        jid="1001",
        pod_ip="127.0.0.1",
        submitted_at=1.0,
        queue_until=2.0,
        state=RUNNING,
        gpus=[0],
        containers=[
            ContainerRecord("prepare", True, state="terminated", exit_code=0),
            ContainerRecord("notebook", False, state=CTR_RUNNING, pid=42, start_ticks=7, gpus=[0]),
        ],
    )
    path = tmp_path / "job.json"
    atomic_write(path, json.dumps(asdict(job)).encode(), 0o600)
    assert path.stat().st_mode & 0o777 == 0o600
    back = Job.from_json(json.loads(path.read_text()))
    assert back == job
    assert [c.name for c in back.inits] == ["prepare"]
    assert [c.name for c in back.mains] == ["notebook"]
    assert back.container("notebook") is back.mains[0]
    assert back.container("absent") is None
    assert not list(tmp_path.glob("*.tmp"))
