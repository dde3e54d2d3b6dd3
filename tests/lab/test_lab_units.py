"""The lab extension's pure TypeScript parts (the poll schedule, the virtual list's row source)
compiled with the project's own TypeScript and run under ``node --test``
(tests/lab/js/datalake.test.cjs)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["labextension/src/datalake/poll.ts", "labextension/src/datalake/rows.ts"]


def test_datalake_units_in_node(tmp_path: Path) -> None:
    tsc = ROOT / "node_modules" / ".bin" / "tsc"
    node = shutil.which("node")
    assert tsc.exists(), f"{tsc} is missing: run scripts/setup.sh (it installs the lab's tools)"
    assert node, "node is missing: run scripts/setup.sh"
    out = tmp_path / "lib"
    r = subprocess.run([str(tsc), "--module", "commonjs", "--target", "ES2022",
                        "--moduleResolution", "node", "--strict", "--skipLibCheck",
                        "--esModuleInterop", "--outDir", str(out), "--rootDir",
                        "labextension/src", *SOURCES],
                       cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([node, "--test", str(ROOT / "tests" / "lab" / "js" /
                                            "datalake.test.cjs")],
                       env={**os.environ, "LIB": str(out),
                            "NODE_PATH": str(ROOT / "node_modules")},
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
