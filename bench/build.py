"""Build time and peak memory of the testbed's Go builds (control plane + etcd, interLink).

Runs ``testbed/build/build-k8s.sh`` and ``testbed/build/build-interlink.sh`` three times each in
a scratch folder, so the project's own cache under ``~/.cache/intertwin-hub`` is left alone:

- cold: empty Go module cache and build cache (everything downloaded from the module proxy);
- warm Go caches: the binaries removed, Go's caches kept (a version bump of one component);
- cached: the binaries present (what every later ``scripts/setup.sh`` does).

Peak memory is the largest sum of RSS over the build's whole process tree (go, compile, link),
sampled every 0.2 s. Usage: ``.venv/bin/python bench/build.py [--only k8s|interlink]``;
``--smoke`` times only the cached case against the project's own cache (what the test suite
runs: the scripts still work and a set-up machine skips the builds).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = {
    "k8s": ROOT / "testbed/build/build-k8s.sh",
    "interlink": ROOT / "testbed/build/build-interlink.sh",
}


def tree_rss(proc: psutil.Process) -> int:
    """RSS of a process and all its descendants, in bytes (processes may vanish meanwhile)."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run(script: Path, env: dict[str, str], log: Path, *args: str) -> tuple[float, int]:
    """Run one build script; return (wall seconds, peak tree RSS bytes). Raises on failure."""
    start = time.monotonic()
    peak = 0
    with log.open("ab") as out:
        proc = subprocess.Popen([str(script), *args], env=env, stdout=out, stderr=subprocess.STDOUT)
        ps = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                peak = max(peak, tree_rss(ps))
            except psutil.Error:
                pass
            time.sleep(0.2)
    if proc.returncode != 0:
        raise SystemExit(f"{script.name} failed with exit code {proc.returncode}; see {log}")
    return time.monotonic() - start, peak


def smoke(only: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="intertwin-build-smoke-") as tmp:
        for name, script in SCRIPTS.items():
            if only and name != only:
                continue
            # --check: a cached build exits at once all the same; an uncached one stops after
            # checking Go instead of building
            wall, _ = run(script, dict(os.environ), Path(tmp) / "build.log", "--check")
            log = (Path(tmp) / "build.log").read_text()
            if "cached in" not in (log.splitlines() or [""])[-1]:
                raise SystemExit(f"{name}: not cached, so scripts/setup.sh has not run:\n{log}")
            print(f"{name}: cached {wall:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--only", choices=sorted(SCRIPTS), help="measure one build only")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="only the cached case, on the project's cache (seconds, no build)",
    )
    args = ap.parse_args()
    if args.smoke:
        smoke(args.only)
        return

    scratch = Path(tempfile.mkdtemp(prefix="intertwin-build-bench-"))
    log = scratch / "build.log"
    print(f"scratch folder {scratch} (log {log}); {os.cpu_count()} cores", flush=True)
    rows = []
    try:
        for name, script in SCRIPTS.items():
            if args.only and name != args.only:
                continue
            env = dict(
                os.environ,
                INTERTWIN_CACHE=str(scratch / name / "out"),
                GOCACHE=str(scratch / name / "gocache"),
                GOMODCACHE=str(scratch / name / "gomodcache"),
            )
            cold = run(script, env, log)
            print(f"{name}: cold {cold[0]:.0f} s, peak {cold[1] / 2**30:.2f} GiB", flush=True)
            for binary in (scratch / name / "out").rglob("*"):
                if binary.is_file():
                    binary.unlink()
            warm = run(script, env, log)
            print(f"{name}: warm Go caches {warm[0]:.0f} s, peak {warm[1] / 2**30:.2f} GiB")
            cached = run(script, env, log)
            print(f"{name}: cached {cached[0]:.2f} s", flush=True)
            rows.append((name, cold, warm, cached))
    finally:
        if not args.keep:
            # the Go module cache is read-only by design
            subprocess.run(["chmod", "-R", "u+w", str(scratch)], check=False)
            shutil.rmtree(scratch, ignore_errors=True)

    print()
    print("| build | cold | peak RSS | warm Go caches | peak RSS | cached | cold / cached |")
    print("|---|---|---|---|---|---|---|")
    for name, cold, warm, cached in rows:
        print(
            f"| {name} | {cold[0]:.0f} s | {cold[1] / 2**30:.2f} GiB | {warm[0]:.0f} s | "
            f"{warm[1] / 2**30:.2f} GiB | {cached[0]:.2f} s | {cold[0] / cached[0]:.0f}x |"
        )


if __name__ == "__main__":
    main()
