"""A workload's usage is its allocation times its running time, to the second."""

from __future__ import annotations

from datetime import timedelta

from intertwin_hub.usage.accounting import usage_of

from .rows import CATALOGUE, T0, row


def test_a_finished_job_is_its_allocation_times_its_running_time() -> None:
    u = usage_of(**row())
    assert u is not None
    assert u.wall_seconds == 2 * 3600 + 30
    assert u.cpu_core_seconds == 16 * (2 * 3600 + 30)
    assert u.memory_gb_seconds == 64 * (2 * 3600 + 30)
    assert u.gpu_seconds == 2 * (2 * 3600 + 30)
    assert u.gpu_model == CATALOGUE.get("vega").node.gpu.model  # type: ignore[union-attr]
    assert not u.estimated


def test_a_running_job_accrues_up_to_the_end_of_the_period() -> None:
    until = T0 + timedelta(minutes=45)
    u = usage_of(**row(state="running", finished=None, until=until))
    assert u is not None and u.end is None and u.wall_seconds == 45 * 60
    # one that ended after the period is still running within it
    later = usage_of(**row(until=until))
    assert later is not None and later.end is None and later.wall_seconds == 45 * 60


def test_what_never_ran_uses_nothing() -> None:
    assert usage_of(**row(state="cancelled", started=None, finished=T0)) is None
    assert usage_of(**row(state="queued", started=None, finished=None)) is None
    # started after the period asked for
    assert usage_of(**row(until=T0 - timedelta(seconds=1))) is None


def test_a_lost_job_is_estimated_and_gpu_free_jobs_have_no_gpu_model() -> None:
    u = usage_of(**row(state="lost"))
    assert u is not None and u.estimated
    cpu_only = usage_of(**row(site="kbfi", gpus=0))
    assert cpu_only is not None and cpu_only.gpu_model is None and cpu_only.gpu_seconds == 0
