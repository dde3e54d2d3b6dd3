"""A replication rule carried out end to end on a testbed Rucio (on SQLite or PostgreSQL)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from testbed.rucio import conveyor_step
from testbed.rucio.client import add_dataset, client, rse_path

RSE = "VEGA-DCACHE"


def replicate_to_vega(
    rucio: dict[str, Any], prefix: str, what: str = "", **replica_query: Any
) -> tuple[Any, str]:
    """Alice rules a fresh three-file dataset to VEGA-DCACHE; one conveyor step makes the rule
    OK, and the replicas Rucio lists (``replica_query``: more list_replicas arguments) are the
    real bytes in the RSE's folder. Returns Alice's client and the rule id."""
    ds = f"{prefix}.{secrets.token_hex(4)}"
    files = {f"{ds}.{i}.dat": secrets.token_bytes(1000 + i) for i in range(3)}
    add_dataset(rucio, "intertwin", ds, files)
    alice = client(rucio, "alice")
    [rule_id] = alice.add_replication_rule(
        [{"scope": "intertwin", "name": ds}], 1, RSE, lifetime=3600
    )
    assert alice.get_replication_rule(rule_id)["state"] == "REPLICATING"

    counts = conveyor_step(rucio)
    print(f"conveyor cycle{what} (3 transfers): {counts['seconds']:.2f} s")
    assert counts["copied"] == 3, counts
    rule = alice.get_replication_rule(rule_id)
    assert (rule["state"], rule["locks_ok_cnt"]) == ("OK", 3)

    reps = list(
        alice.list_replicas(
            [{"scope": "intertwin", "name": ds}],
            schemes=["file"],
            rse_expression=RSE,
            **replica_query,
        )
    )
    assert len(reps) == 3
    for rep in reps:
        [pfn] = rep["rses"][RSE]
        path = Path(urlparse(pfn).path)
        assert path == rse_path(rucio, RSE, "intertwin", rep["name"])
        assert path.is_relative_to(rucio["rses"][RSE]["path"])
        assert path.read_bytes() == files[rep["name"]]
    return alice, rule_id
