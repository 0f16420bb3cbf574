"""The Route 53 zone import: the terraform engine's import step (a fake terraform binary records
its argv) and the flow that finds the zone and hands it to the unit's engine (a fake engine).

The real `terraform import` with the AWS provider is in tests/integration/test_dns_import.py
(it needs a filesystem mirror of the provider, which cannot be downloaded).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from moto import mock_aws

from refarch.aws import AwsSessions
from refarch.engines import EngineResult, UnitJob
from refarch.engines.terraform import TerraformEngine
from refarch.errors import ProcessFailed
from refarch.exec.process import ProcessResult
from refarch.models import Account, Repo, Unit
from refarch.provision.dns import import_zones
from refarch.settings import Settings, settings_from_dict
from tests.conftest import ACCOUNTS
from tests.unit.test_workdir import engine_job

ZONE = "Z0123456789ABCDEFGHIJ"
ADDRESS = "aws_route53_zone.primary_domain"

# Records each command line; `state list` prints STATE (one address a line) or fails like
# Terraform without a state file when STATE is "missing".
FAKE_TERRAFORM = """#!{python}
import os, sys
with open(os.environ["RECORD"], "a") as record:
    record.write(" ".join(sys.argv[1:]) + "\\n")
if sys.argv[1:3] == ["state", "list"]:
    state = os.environ.get("STATE", "")
    if state == "missing":
        print("No state file was found!", file=sys.stderr)
        sys.exit(1)
    if state == "broken":
        print("Error: AccessDenied", file=sys.stderr)
        sys.exit(1)
    for address in state.split(","):
        if address:
            print(address)
sys.exit(0)
"""


def _engine(tmp_path: Path) -> TerraformEngine:
    binary = tmp_path / "fake-terraform"
    binary.write_text(FAKE_TERRAFORM.format(python=sys.executable))
    binary.chmod(0o755)
    return TerraformEngine(binary=str(binary))


def _commands(record: Path) -> list[str]:
    return [" ".join(line.split()[:2]) for line in record.read_text().splitlines()]


@pytest.mark.parametrize("state", ["", "missing", "aws_route53_record.www"])
def test_import_runs_in_the_units_folder_when_the_state_lacks_the_zone(tmp_path: Path, state: str) -> None:
    record = tmp_path / "record.txt"
    job = engine_job(tmp_path, "import", lock_timeout="5m")
    job = replace(job, env={**job.env, "RECORD": str(record), "STATE": state})
    result = _engine(tmp_path).import_resource(job, ADDRESS, ZONE)
    assert result.outputs == {"imported": True} and result.process.ok
    lines = record.read_text().splitlines()
    assert lines[0].startswith("init -input=false -no-color -reconfigure -backend-config=")
    assert lines[1:] == ["state list", f"import -input=false -no-color -lock-timeout=5m {ADDRESS} {ZONE}"]
    assert result.process.cwd.endswith("/vpc")  # the unit's prepared folder, with its backend


def test_import_is_skipped_when_the_zone_is_in_state(tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    job = engine_job(tmp_path, "import")
    job = replace(job, env={**job.env, "RECORD": str(record), "STATE": f"aws_route53_record.www,{ADDRESS}"})
    result = _engine(tmp_path).import_resource(job, ADDRESS, ZONE)
    assert result.outputs == {"imported": False}
    assert _commands(record) == ["init -input=false", "state list"]


def test_a_failing_state_list_stops_before_importing(tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    job = engine_job(tmp_path, "import")
    job = replace(job, env={**job.env, "RECORD": str(record), "STATE": "broken"})
    result = _engine(tmp_path).import_resource(job, ADDRESS, ZONE)
    assert result.outputs is None and "AccessDenied" in result.process.output_tail
    assert _commands(record) == ["init -input=false", "state list"]


# -- the flow: which unit, which zone, which credentials ---------------------------------------


class FakeEngine:
    """Implements import_resource; says the address is in state after the first import."""

    def __init__(self) -> None:
        self.calls: list[tuple[UnitJob, str, str]] = []
        self.state: set[tuple[str, str]] = set()

    def import_resource(self, job: UnitJob, address: str, resource_id: str) -> EngineResult:
        self.calls.append((job, address, resource_id))
        done = ProcessResult(("terraform", "import"), "/w", 0, "", "", 0.0)
        key = (job.unit.path, address)
        imported = key not in self.state
        self.state.add(key)
        return EngineResult(done, {"imported": imported})


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def _repo(tmp_path: Path, settings: Settings, domain: str = "acme.example") -> Repo:
    zone_unit = Unit(
        "shared-services/us-east-1/route53",
        "shared-services",
        ACCOUNTS["shared-services"],
        "us-east-1",
        inputs={"domain_name": domain, "tags": {}},
    )
    other = Unit("dev/us-east-1/vpc", "dev", ACCOUNTS["dev"], "us-east-1", inputs={"domain_name": domain})
    accounts = (
        Account("shared-services", ACCOUNTS["shared-services"], 2),
        Account("dev", ACCOUNTS["dev"], 3),
    )
    return Repo(tmp_path, {u.path: u for u in (zone_unit, other)}, accounts, settings)


def _zone(sessions: AwsSessions, account: str, name: str) -> str:
    route53 = sessions.client("route53", ACCOUNTS[account], account_name=account)
    return str(route53.create_hosted_zone(Name=name, CallerReference=name)["HostedZone"]["Id"]).rsplit("/")[
        -1
    ]


def test_the_zone_of_the_units_account_is_imported_once(aws: None, tmp_path: Path) -> None:
    settings = Settings()
    sessions = AwsSessions(settings)
    zone_id = _zone(sessions, "shared-services", "acme.example")
    _zone(sessions, "dev", "acme.example")  # another account's zone of the same name
    engine = FakeEngine()
    cli_config = str(tmp_path / "terraformrc")
    env = {"PATH": "/bin", "TF_CLI_CONFIG_FILE": cli_config, "AWS_PROFILE": "caller"}
    first = import_zones(_repo(tmp_path, settings), settings, engine=engine, sessions=sessions, env=env)
    assert [(i.unit, i.domain, i.status, i.zone_id) for i in first] == [
        ("shared-services/us-east-1/route53", "acme.example", "imported", zone_id)
    ]
    job, address, resource_id = engine.calls[0]
    assert (address, resource_id) == (ADDRESS, zone_id)
    # The job carries the unit's own account credentials, not the caller's environment.
    assert job.env["AWS_ACCESS_KEY_ID"] and job.env["PATH"] == "/bin" and "HOME" not in job.env
    assert job.env["TF_CLI_CONFIG_FILE"] == cli_config and "AWS_PROFILE" not in job.env  # mirror: yes
    assert job.work_root == tmp_path / ".refarch" / "work"
    again = import_zones(_repo(tmp_path, settings), settings, engine=engine, sessions=sessions)
    assert [i.status for i in again] == ["exists"]


def test_no_zone_means_nothing_to_import(aws: None, tmp_path: Path) -> None:
    settings = Settings()
    engine = FakeEngine()
    result = import_zones(_repo(tmp_path, settings), settings, engine=engine, sessions=AwsSessions(settings))
    assert [i.status for i in result] == ["absent"] and engine.calls == []


def test_dns_settings_choose_the_unit_and_address(aws: None, tmp_path: Path) -> None:
    settings = settings_from_dict({"dns": {"unit": "dev/us-east-1/vpc", "address": "aws_route53_zone.main"}})
    sessions = AwsSessions(settings)
    zone_id = _zone(sessions, "dev", "acme.example")
    engine = FakeEngine()
    (result,) = import_zones(_repo(tmp_path, settings), settings, engine=engine, sessions=sessions)
    assert (result.unit, result.address, result.zone_id) == (
        "dev/us-east-1/vpc",
        "aws_route53_zone.main",
        zone_id,
    )


def test_a_failed_import_raises_with_terraforms_message(aws: None, tmp_path: Path) -> None:
    class Failing(FakeEngine):
        def import_resource(self, job: UnitJob, address: str, resource_id: str) -> EngineResult:
            failed = ProcessResult(
                ("terraform", "import"), "/w", 1, "", "Error: Cannot import non-existent", 0.0
            )
            return EngineResult(failed, None)

    settings = Settings()
    sessions = AwsSessions(settings)
    _zone(sessions, "shared-services", "acme.example")
    with pytest.raises(ProcessFailed, match="Cannot import non-existent"):
        import_zones(_repo(tmp_path, settings), settings, engine=Failing(), sessions=sessions)


def test_cli_is_registered() -> None:
    from click.testing import CliRunner

    from refarch.cli import cli

    result = CliRunner().invoke(cli, ["dns", "import", "--help"])
    assert result.exit_code == 0 and "terraform import" in result.output
