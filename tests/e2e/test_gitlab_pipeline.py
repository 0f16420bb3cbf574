"""The pipeline `refarch ci gitlab` emits, run by a real GitLab runner (gitlab-ci-local, shell
executor, a copy of the repo per job) against the moto server: bench/gitlab_pipeline.py plays
the scenarios, this test checks what each did. Cost: about 4 minutes on 2 loaded cores."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tests.conftest import MotoServer

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_gitlab_pipeline", BENCH / "gitlab_pipeline.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench = load_bench()
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(bench.missing() is not None, reason=str(bench.missing()))]
UNITS = {
    "security/us-east-1/iam-groups",
    "shared-services/us-east-1/ecr",
    "shared-services/us-east-1/vpc",
    "dev/us-east-1/vpc",
    "prod/us-east-1/vpc",
}


def test_the_emitted_gitlab_pipeline_applies_gates_recovers_and_applies_only_what_changed(
    tmp_path: Path, moto_server: MotoServer
) -> None:
    f = bench.simulate(tmp_path, moto_server.endpoint_url)
    assert len(f["jobs"]) == 8  # plan-<account> and apply-<account> for 4 accounts

    # 1. clean: every unit once, prod waits for its approval
    clean = f["clean"]
    assert clean["exit"] == 0, clean["output"]
    assert clean["applied"] == dict.fromkeys(UNITS - {"prod/us-east-1/vpc"}, 1), clean["output"]
    # prod's unit changed after its plan was reviewed: refused, nothing applied
    refused = f["changed_after_review"]
    assert refused["exit"] != 0 and "prod/us-east-1/vpc" in refused["output"], refused["output"]
    assert "prod/us-east-1/vpc" not in refused["applied"]
    approved = f["approved"]  # the change reverted: exactly the reviewed plan is applied
    assert approved["exit"] == 0, approved["output"]
    assert approved["applied"] == dict.fromkeys(UNITS, 1)

    # 2. rerun: nothing applied
    assert f["rerun"]["exit"] == 0, f["rerun"]["output"]
    assert f["rerun"]["applied"] == {}

    # 3. one module: only the accounts using it apply
    one = f["one_module"]
    assert one["exit"] == 0, one["output"]
    assert one["applied"] == dict.fromkeys(
        {"shared-services/us-east-1/vpc", "dev/us-east-1/vpc", "prod/us-east-1/vpc"}, 1
    )
    assert set(one["apply_runs"]) == {"shared-services", "dev", "prod"}

    # 4. killed mid-apply, retried: finishes with no manual step and no expiry wait
    # The job is killed once its first unit applied; on a loaded machine the kill can land
    # after Terraform wrote the state but before the run recorded the unit: the retry then
    # finds that unit's saved plan stale with its reviewed changes in place (not applied again).
    retry = f["kill_retry"]
    assert retry["killed"]["exit"] != 0
    assert sum(retry["killed"]["applied"].values()) <= 1, retry["killed"]["output"]
    assert retry["retry_exit"] == 0, retry["output"]
    shared = {"shared-services/us-east-1/ecr", "shared-services/us-east-1/vpc"}
    assert retry["applied"] == dict.fromkeys(shared, 1), retry["output"]  # each once, over both jobs
    assert any("released the lock on account shared-services" in n for n in retry["notices"]), retry[
        "notices"
    ]
    assert retry["retry_s"] < 120  # never the 15-minute lock expiry
