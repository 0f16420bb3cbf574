"""The terragrunt engine against the stand-in (tests/stand_ins/terragrunt): both CLI dialects,
retries with their remedies, outputs, and an interrupted run — through run() where it matters."""

import json
import os
import shutil
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from refarch import load_repo, plan
from refarch.engines import UnitJob, default_engine_name, make_engine
from refarch.engines.terragrunt import LEGACY, MODERN, TerragruntEngine, dialect_of
from refarch.errors import ToolNotFound
from refarch.events import UnitOutput
from refarch.exec.process import Interrupt
from refarch.models import Status
from refarch.runner.ledger import read_events
from refarch.runner.run import RunOptions, run
from refarch.runner.unit import UnitAccess

STAND_IN = Path(__file__).resolve().parents[1] / "stand_ins" / "terragrunt"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "live"
VPC = "dev/us-east-1/vpc"
MYSQL = "dev/us-east-1/mysql"
APP = "dev/us-east-1/app"


class Credentials:
    def for_unit(self, unit):
        return UnitAccess(
            {
                "AWS_ACCESS_KEY_ID": f"key-{unit.account_id}",
                "AWS_SECRET_ACCESS_KEY": "fake",
                "AWS_REGION": "us-east-1",
            },
            {"Account": unit.account_id or ""},
        )


@pytest.fixture
def live(tmp_path):
    root = tmp_path / "live"
    shutil.copytree(FIXTURE, root)
    return root


@pytest.fixture
def stand_in(tmp_path):
    """Environment for the stand-in: where it records, what it is scripted to do."""
    record = tmp_path / "calls.jsonl"
    script_file = tmp_path / "script.json"
    script_file.write_text("{}")

    class StandIn:
        env = {
            "PATH": os.environ["PATH"],
            "STANDIN_TG_RECORD": str(record),
            "STANDIN_TG_SCRIPT": str(script_file),
            "STANDIN_TG_VERSION": "0.67.16",
        }

        def script(self, units):
            script_file.write_text(json.dumps({"units": units}))

        def calls(self):
            if not record.exists():
                return []
            return [json.loads(line) for line in record.read_text().splitlines()]

    return StandIn()


def job(repo, unit, env, action="apply", **changes):
    lines = []
    unit_job = UnitJob(
        unit=repo.units[unit],
        action=action,
        repo=repo,
        work_root=repo.root / ".refarch" / "work",
        env=env,
        dependency_outputs={},
        log_path=repo.root / "unit.log",
        on_line=lambda s, line: lines.append(line),
        interrupt=Interrupt(),
    )
    return replace(unit_job, **changes), lines


@pytest.mark.parametrize(
    ("text", "dialect"),
    [
        ("terragrunt version v0.67.16", LEGACY),
        ("terragrunt version v0.72.9\n", LEGACY),
        ("terragrunt version v0.73.0", MODERN),
        ("terragrunt version v1.0.2", MODERN),
    ],
)
def test_dialect_follows_the_version(text, dialect):
    assert dialect_of(text).name == dialect


def test_a_version_that_is_not_one_is_a_clear_error():
    with pytest.raises(ToolNotFound, match="not a version"):
        dialect_of("command not found")


def test_legacy_dialect_flags_and_env(live, stand_in):
    repo = load_repo(live, cache=False)
    engine = TerragruntEngine(binary=str(STAND_IN))
    source = live / "modules"
    env = {**stand_in.env, "AWS_ACCESS_KEY_ID": "key-of-dev"}
    result = engine.execute(job(repo, VPC, env, source_override=source)[0])
    assert result.process.ok, result.process.output_tail
    call = stand_in.calls()[-1]
    argv = call["argv"]
    assert argv[1:5] == ["apply", "-auto-approve", "-input=false", "-no-color"]
    assert "--terragrunt-non-interactive" in argv
    assert argv[argv.index("--terragrunt-source") + 1] == str(source)
    role = "arn:aws:iam::444444444444:role/OrganizationAccountAccessRole"
    assert argv[argv.index("--terragrunt-iam-role") + 1] == role
    assert call["cwd"] == str(live / VPC)
    assert call["env"]["TERRAGRUNT_NON_INTERACTIVE"] == "true"
    assert call["env"]["TERRAGRUNT_DOWNLOAD"].startswith(str(live / ".refarch" / "work"))
    assert call["env"]["AWS_ACCESS_KEY_ID"] == "key-of-dev"  # the job's env, nothing else
    assert not any(k.startswith("TG_") for k in call["env"])


def test_modern_dialect_flags_and_env(live, stand_in):
    repo = load_repo(live, cache=False)
    env = {**stand_in.env, "STANDIN_TG_VERSION": "1.0.2"}
    engine = TerragruntEngine(binary=str(STAND_IN))
    unit_job, _ = job(
        repo,
        VPC,
        env,
        action="destroy",
        source_override=live / "modules",
        refresh_modules=True,
        lock_timeout="5m",
    )
    result = engine.execute(unit_job)
    assert result.process.ok, result.process.output_tail
    call = stand_in.calls()[-1]
    argv = call["argv"]
    assert argv[1:3] == ["run", "--non-interactive"]
    assert argv[argv.index("--source") + 1] == str(live / "modules")
    assert argv[argv.index("--iam-assume-role") + 1].endswith(":role/OrganizationAccountAccessRole")
    assert argv[argv.index("--") + 1 :] == [
        "destroy",
        "-auto-approve",
        "-input=false",
        "-no-color",
        "-lock-timeout=5m",
    ]
    assert call["env"]["TG_NON_INTERACTIVE"] == "true"
    assert call["env"]["TG_SOURCE_UPDATE"] == "true"
    assert "TG_DOWNLOAD_DIR" in call["env"]
    assert not any(k.startswith("TERRAGRUNT_") for k in call["env"])


def test_the_stand_in_rejects_the_wrong_dialect_like_real_terragrunt(live, stand_in):
    repo = load_repo(live, cache=False)
    env = {**stand_in.env, "STANDIN_TG_VERSION": "1.0.2"}
    forced = TerragruntEngine(binary=str(STAND_IN), dialect=LEGACY)
    result = forced.execute(job(repo, VPC, env)[0])
    assert not result.process.ok
    assert "flag provided but not defined" in result.process.stderr_tail


def test_iam_role_pass_through_can_be_turned_off(live, stand_in):
    from refarch.settings import settings_from_dict

    repo = load_repo(live, cache=False)
    settings = settings_from_dict(
        {"engine": {"terragrunt_binary": str(STAND_IN), "terragrunt_pass_iam_role": False}}
    )
    engine = make_engine("terragrunt", settings)
    assert engine.execute(job(repo, VPC, stand_in.env)[0]).process.ok
    assert "--terragrunt-iam-role" not in stand_in.calls()[-1]["argv"]


def test_output_action_returns_the_outputs(live, stand_in):
    repo = load_repo(live, cache=False)
    stand_in.script({VPC: {"outputs": {"vpc_id": "vpc-123", "cidr": "10.0.0.0/16"}}})
    engine = TerragruntEngine(binary=str(STAND_IN))
    result = engine.execute(job(repo, VPC, stand_in.env, action="output")[0])
    assert result.outputs == {"vpc_id": "vpc-123", "cidr": "10.0.0.0/16"}
    assert engine.read_outputs(job(repo, VPC, stand_in.env)[0]) == result.outputs


def test_default_engine_is_terragrunt_only_when_it_is_on_path(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    assert default_engine_name({"PATH": str(bin_dir)}) == "terraform"
    (bin_dir / "terragrunt").symlink_to(STAND_IN)
    assert default_engine_name({"PATH": str(bin_dir)}) == "terragrunt"


# -- through run() ----------------------------------------------------------------------------
def run_units(live, stand_in, include, **kwargs):
    repo = load_repo(live, cache=False)
    selected = plan(repo, "apply", include=include, ignore_dependencies=True)
    sleeps = []
    report = run(
        selected,
        "apply",
        engine=TerragruntEngine(binary=str(STAND_IN)),
        credentials=Credentials(),
        base_env=stand_in.env,
        sleep=sleeps.append,
        options=RunOptions(
            **{k: kwargs.pop(k) for k in ("parallelism", "fail_fast", "resume") if k in kwargs}
        ),
        **kwargs,
    )
    return report, sleeps


def test_transient_errors_are_retried_with_backoff_then_succeed(live, stand_in):
    stand_in.script(
        {VPC: {"fail_times": 2, "stderr": 'Error installing provider "aws": net/http: TLS handshake timeout'}}
    )
    report, sleeps = run_units(live, stand_in, [VPC])
    unit = report.units[VPC]
    assert unit.status == Status.SUCCEEDED and unit.attempts == 3
    assert [r.rule for r in unit.retries] == ["tls-handshake-timeout"] * 2
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0] > 0
    ledger = read_events(Path(report.ledger_path))
    assert [e["attempt"] for e in ledger if e["event"] == "retry"] == [1, 2]


def test_missing_modules_are_retried_once_with_source_update(live, stand_in):
    stand_in.script(
        {
            VPC: {
                "fail_times": 1,
                "stderr": "Error loading modules: module vpc: not found, may need to run 'terraform init'",
            }
        }
    )
    report, _ = run_units(live, stand_in, [VPC])
    assert report.units[VPC].status == Status.SUCCEEDED
    first, second = [c for c in stand_in.calls() if c["command"] == "apply"]
    assert "TERRAGRUNT_SOURCE_UPDATE" not in first["env"]
    assert second["env"]["TERRAGRUNT_SOURCE_UPDATE"] == "true"


def test_state_lock_is_waited_for_never_forced(live, stand_in):
    stand_in.script({VPC: {"fail_times": 1, "stderr": "Error: Error acquiring the state lock"}})
    report, _ = run_units(live, stand_in, [VPC])
    assert report.units[VPC].status == Status.SUCCEEDED
    argvs = [c["argv"] for c in stand_in.calls()]
    assert "-lock-timeout=5m" not in argvs[0] and "-lock-timeout=5m" in argvs[1]
    assert not any("force-unlock" in a for argv in argvs for a in argv)


def test_an_unknown_failure_is_not_retried_and_stops_dependents(live, stand_in):
    stand_in.script({VPC: {"fail_times": 5, "stderr": "Error: Unsupported argument"}})
    report, sleeps = run_units(live, stand_in, [VPC, MYSQL, "dev/us-west-2/vpc"])
    assert report.units[VPC].status == Status.FAILED and report.units[VPC].attempts == 1
    assert "Unsupported argument" in report.units[VPC].message
    assert report.units[MYSQL].status == Status.NOT_RUN
    assert report.units[MYSQL].message == f"waits for {VPC}, which failed"
    assert report.units["dev/us-west-2/vpc"].status == Status.SUCCEEDED
    assert sleeps == [] and report.exit_code == 1


def test_each_line_reaches_the_unit_log_whole(live, stand_in):
    stand_in.script({VPC: {"stdout": [f"line {i} " + "x" * 200 for i in range(50)]}})
    report, _ = run_units(live, stand_in, [VPC])
    lines = Path(report.units[VPC].log_path).read_text().splitlines()
    assert [line for line in lines if line.startswith("line ")] == [
        f"line {i} " + "x" * 200 for i in range(50)
    ]


def test_interrupt_forwards_sigint_and_waits_for_cleanup(live, stand_in):
    stand_in.script({VPC: {"sleep": 30, "trap_sigint": True}})
    interrupt = Interrupt()
    events = []

    def on_event(event):
        events.append(event)
        if isinstance(event, UnitOutput) and "starting" in event.text:
            threading.Timer(0.1, interrupt.request).start()

    report, _ = run_units(live, stand_in, [VPC, MYSQL], interrupt=interrupt, on_event=on_event)
    assert report.interrupted and report.exit_code == 130
    assert report.units[VPC].status == Status.INTERRUPTED and report.units[MYSQL].status == Status.NOT_RUN
    assert "released" in Path(report.units[VPC].log_path).read_text()
    kinds = [e["event"] for e in read_events(Path(report.ledger_path))]
    assert "run_interrupted" in kinds and kinds[-1] == "run_finish"
