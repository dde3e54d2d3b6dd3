"""A real Rucio server for the testbed (:mod:`testbed.rucio.instance` starts it, seeded, with
its conveyor sidecar); :mod:`testbed.rucio.client` talks to it as tests and the demo do.

The names below are what the testbed, the tests and the benchmarks use from outside."""

from .instance import (
    DAVS_ONLY,
    Database,
    conveyor_step,
    database_from_env,
    rucio_server_running,
    set_pump_interval,
    start_rucio,
    start_rucio_server,
    stop_rucio,
    stop_rucio_server,
)

__all__ = [
    "DAVS_ONLY",
    "Database",
    "conveyor_step",
    "database_from_env",
    "rucio_server_running",
    "set_pump_interval",
    "start_rucio",
    "start_rucio_server",
    "stop_rucio",
    "stop_rucio_server",
]
