"""``python -m testbed.local_plugin``: serve the local interLink plugin (a FAKE batch system,
see :mod:`testbed.local_plugin`), or with ``--cancel-all`` kill every job under ``--root``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

import tornado.httpserver
import tornado.ioloop

from .app import make_app
from .records import ACTIVE_STATES
from .runner import Runner
from .slurm import Slurm

TICK_MS = 250


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m testbed.local_plugin",
        description="Local interLink plugin: a FAKE site batch system running each pod's "
        "containers as local processes (testbed only).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=4000, help="port to listen on")
    p.add_argument(
        "--root", type=Path, required=True, help="folder keeping all jobs' state, files and logs"
    )
    p.add_argument("--site", default="local", help="site name shown in messages")
    p.add_argument(
        "--queue-seconds",
        type=float,
        default=0.0,
        help="hold every job this long in the emulated batch queue",
    )
    p.add_argument(
        "--gpus",
        type=int,
        default=None,
        help="fake GPUs of this site; without it GPU limits are ignored",
    )
    p.add_argument(
        "--slurm-conf",
        type=Path,
        default=None,
        help="queue every job in this real Slurm cluster (slurm.conf of "
        "testbed.slurm) instead of the emulated queue; containers run as "
        "steps of the job",
    )
    p.add_argument("--log-level", default="INFO", help="DEBUG also logs every status call")
    p.add_argument(
        "--cancel-all",
        action="store_true",
        help="kill every job under --root and exit (jobs outlive the plugin, as "
        "batch jobs outlive their daemon; testbed teardown uses this)",
    )
    return p.parse_args(argv)


async def serve(args: argparse.Namespace, runner: Runner) -> None:
    server = tornado.httpserver.HTTPServer(make_app(runner))
    server.listen(args.port, args.host)
    ticker = tornado.ioloop.PeriodicCallback(runner.tick, TICK_MS)
    ticker.start()
    log = logging.getLogger("testbed.local_plugin")
    log.info(
        "local interLink plugin (fake batch system) of site %s on http://%s:%d, root %s",
        args.site,
        args.host,
        args.port,
        args.root,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    # jobs keep running, like batch jobs when their daemon restarts; a new plugin on the
    # same --root re-attaches to them
    live = sum(1 for j in runner.jobs.values() if j.state in ("queued", *ACTIVE_STATES))
    log.info("stopping; %d live jobs keep running", live)
    ticker.stop()
    server.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format=f"%(asctime)s %(levelname)s local-plugin[{args.site}] %(message)s",
    )
    if args.gpus is not None and args.gpus < 0:
        sys.exit("--gpus must be >= 0")
    slurm = Slurm(args.slurm_conf.resolve()) if args.slurm_conf else None
    runner = Runner(args.root.resolve(), args.site, args.queue_seconds, args.gpus, slurm)
    if args.cancel_all:
        for line in asyncio.run(runner.cancel_all()):
            print(line, end="")
        return 0
    asyncio.run(serve(args, runner))
    return 0


if __name__ == "__main__":
    sys.exit(main())
