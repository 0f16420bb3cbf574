"""The simulated CI fan-out (bench/fanout.py, whose figures `make bench` prints): the emitted
GitHub pipeline's jobs as separate processes in separate clones, two at a time, in `needs:`
order, against one moto server with the shared DynamoDB ledger and the real Terraform 1.0.3.
The apply jobs apply exactly their plan job's saved plans; a killed one is retried as is."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from refarch.engines.terraform import pinned_terraform_binary
from tests.conftest import MotoServer

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(pinned_terraform_binary() is None, reason="Terraform 1.0.3 is not installed"),
]

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load_fanout():
    sys.path.insert(0, str(BENCH))  # fanout.py imports its sibling apply_terraform.py
    spec = importlib.util.spec_from_file_location("bench_fanout", BENCH / "fanout.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_every_unit_applied_once_across_runners_with_a_kill_resume_and_a_refused_duplicate(
    tmp_path: Path, moto_server: MotoServer
) -> None:
    # -j 1: a job applies its units one after the other, so the kill lands between two units
    figures = load_fanout().simulate(tmp_path, moto_server.endpoint_url, runners=3, parallelism=1)
    # plan-<x> and apply-<x> per account and dependency step (4 steps in each account)
    assert figures["jobs"] == 40 and figures["units"] == 30
    needs = figures["needs"]
    assert needs["plan-security"] == [] and needs["apply-security"] == ["plan-security"]
    assert needs["plan-security-step-2"] == ["apply-security"]
    assert needs["plan-dev"] == ["apply-shared-services-step-4"]
    assert figures["applies_per_unit"] == [1], figures[
        "applied_more_than_once"
    ]  # every unit applied exactly once, over all runs
    assert figures["refusals"] == 1 and figures["duplicate_exit_codes"] == [2]  # the account lock
    assert figures["kills"] == 1 and figures["resumed"] == 1
    first, second = figures["victim_runners"]
    assert first != second  # resumed on another runner, from the shared ledger
    assert len(figures["lock_notices"]) == 1  # the killed run's account lock, known dead
    others = ("shared-services", "logs", "dev", "prod")
    assert figures["cross_account_outputs"] == dict.fromkeys(others, "hello us-east-1/base<-hello security")
