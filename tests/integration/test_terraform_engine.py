"""The terraform engine against real Terraform 1.0.3 and a moto server (S3 state, DynamoDB locks).

Every module here needs no provider (variables, locals, outputs), so nothing is downloaded:
the S3 backend is built into Terraform. Two accounts are reached the way a live repo does it,
with `role_arn` in the backend configuration (STS assume-role against moto), and a third
with credentials that refarch assumed itself (the runner's way, via `AwsSessions`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from refarch.aws import AwsSessions
from refarch.engines import EngineResult, UnitJob
from refarch.engines.terraform import TerraformEngine, pinned_terraform_binary
from refarch.errors import ModuleSourceError
from refarch.exec.process import Interrupt
from refarch.models import Dependency, Generate, RemoteState, Repo, Unit
from refarch.settings import Settings
from tests.conftest import ACCOUNTS, FIXTURES

pytestmark = pytest.mark.integration

REGION = "us-east-1"
LOCK_TABLE = "terraform-locks"
ROLE = "arn:aws:iam::{}:role/OrganizationAccountAccessRole"


def bucket_for(account: str) -> str:
    return f"acme-{account}-tf-state"


class Harness:
    """A throwaway live repo on disk, its accounts' state buckets and lock tables in moto,
    and a way to run one unit's job through the engine."""

    def __init__(self, tmp_path: Path, endpoint_url: str) -> None:
        self.root = tmp_path / "live"
        self.root.mkdir()
        shutil.copytree(FIXTURES / "modules", tmp_path / "modules")
        self.endpoint_url = endpoint_url
        self.settings = Settings(endpoint_url=endpoint_url, region=REGION)
        self.sessions = AwsSessions(self.settings)
        self.units: dict[str, Unit] = {}
        self.lines: dict[str, list[str]] = {}
        self.base_env = {
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_ENDPOINT_URL": endpoint_url,
        }

    # -- AWS side ----------------------------------------------------------------------
    def client(self, service: str, account: str) -> Any:
        return self.sessions.client(service, ACCOUNTS[account], REGION, account_name=account)

    def make_backend(self, account: str) -> None:
        self.client("s3", account).create_bucket(Bucket=bucket_for(account))
        self.client("dynamodb", account).create_table(
            TableName=LOCK_TABLE,
            KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

    def state_keys(self, account: str) -> list[str]:
        listing = self.client("s3", account).list_objects_v2(Bucket=bucket_for(account))
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def locks(self, account: str) -> list[str]:
        """LockIDs of held state locks (the `-md5` items are digests, not locks)."""
        items = self.client("dynamodb", account).scan(TableName=LOCK_TABLE)["Items"]
        return [i["LockID"]["S"] for i in items if not i["LockID"]["S"].endswith("-md5")]

    # -- the repo ----------------------------------------------------------------------
    def add_unit(
        self,
        path: str,
        account: str,
        module: str,
        inputs: Mapping[str, Any],
        *,
        via_backend_role: bool = True,
        deps: tuple[Dependency, ...] = (),
        generate: tuple[Generate, ...] = (),
        backend_generate: bool = False,
    ) -> Unit:
        (self.root / path).mkdir(parents=True)
        depth = len(Path(path).parts)
        config: dict[str, Any] = {
            "bucket": bucket_for(account),
            "key": f"{path}/terraform.tfstate",
            "region": REGION,
            "dynamodb_table": LOCK_TABLE,
            "encrypt": True,
        }
        if via_backend_role:
            config["role_arn"] = ROLE.format(ACCOUNTS[account])
        unit = Unit(
            path=path,
            account=account,
            account_id=ACCOUNTS[account],
            region=REGION,
            source=f"{'../' * depth}../modules//{module}",
            remote_state=RemoteState(
                backend="s3",
                config=config,
                generate={"path": "backend.tf", "if_exists": "overwrite_terragrunt"}
                if backend_generate
                else None,
            ),
            inputs=dict(inputs),
            dependencies=tuple(d.path for d in deps),
            dependency_blocks=deps,
            generate=generate,
        )
        self.units[path] = unit
        return unit

    @property
    def repo(self) -> Repo:
        return Repo(root=self.root, units=dict(self.units), accounts=(), settings=self.settings)

    def env_for(self, unit: Unit, *, via_backend_role: bool) -> dict[str, str]:
        if via_backend_role:  # the caller's own credentials; the backend assumes role_arn
            return dict(self.base_env)
        assert unit.account_id is not None
        creds = self.sessions.credentials_env(unit.account_id, REGION, account_name=unit.account)
        return {**self.base_env, **creds}

    def job(
        self,
        path: str,
        action: str = "apply",
        *,
        outputs: Mapping[str, Any] | None = None,
        via_backend_role: bool = True,
        interrupt: Interrupt | None = None,
        lock_timeout: str | None = None,
        source_override: Path | None = None,
    ) -> UnitJob:
        unit = self.units[path]
        lines = self.lines.setdefault(path, [])
        return UnitJob(
            unit=unit,
            action=action,
            repo=self.repo,
            work_root=self.root / ".refarch" / "work",
            env=self.env_for(unit, via_backend_role=via_backend_role),
            dependency_outputs=outputs or {},
            log_path=self.root / ".refarch" / "logs" / f"{path.replace('/', '_')}.log",
            on_line=lambda _stream, line: lines.append(line),
            interrupt=interrupt or Interrupt(),
            endpoint_url=self.endpoint_url,
            lock_timeout=lock_timeout,
            source_override=source_override,
        )


def wire_outputs(job: UnitJob) -> Unit:
    """Stands in for refarch.config.evaluate_unit: `dependency.echo.outputs.X` -> inputs."""
    unit = job.unit
    echo = job.dependency_outputs["echo"]
    return replace(
        unit,
        inputs={**unit.inputs, "upstream_greeting": echo["greeting"], "upstream_details": echo["details"]},
    )


@pytest.fixture
def harness(tmp_path: Path, moto_server: Any) -> Harness:
    h = Harness(tmp_path, moto_server.endpoint_url)
    for account in ("security", "dev", "stage"):
        h.make_backend(account)
    return h


def ok(result: EngineResult, harness: Harness, path: str) -> EngineResult:
    assert result.process.ok, "\n".join(harness.lines.get(path, [])[-40:])
    return result


def test_the_tests_run_the_pinned_terraform() -> None:
    assert TerraformEngine(Settings()).binary == pinned_terraform_binary()  # TG_TF_PATH (conftest)
    version = subprocess.run(
        [str(pinned_terraform_binary()), "version"], capture_output=True, text=True, check=True
    ).stdout
    assert version.startswith("Terraform v1.0.3")


def test_apply_across_accounts_and_outputs_flow_to_a_dependent(harness: Harness) -> None:
    harness.add_unit(
        "security/us-east-1/echo",
        "security",
        "echo",
        {"name": "security", "tags": {"tier": "1"}, "secret_token": "s3cr3t", "account_name": "security"},
    )  # account_name: undeclared, left out
    dep = Dependency(name="echo", path="security/us-east-1/echo")
    harness.add_unit(
        "dev/us-east-1/consumer",
        "dev",
        "consumer",
        {"upstream_greeting": "mock", "upstream_details": {"size": 0}},
        deps=(dep,),
    )
    engine = TerraformEngine(harness.settings, evaluate=wire_outputs)

    first = ok(engine.execute(harness.job("security/us-east-1/echo")), harness, "security/us-east-1/echo")
    assert first.outputs == {
        "greeting": "hello security",
        "details": {"name": "security", "tags": {"tier": "1"}, "size": 8},
        "token": "s3cr3t",
    }
    second = ok(
        engine.execute(harness.job("dev/us-east-1/consumer", outputs={"echo": dict(first.outputs)})),
        harness,
        "dev/us-east-1/consumer",
    )
    assert second.outputs == {"summary": "hello security (8 letters)"}

    # Each state sits in its own account's bucket, reached through role_arn; no lock is held.
    assert harness.state_keys("security") == ["security/us-east-1/echo/terraform.tfstate"]
    assert harness.state_keys("dev") == ["dev/us-east-1/consumer/terraform.tfstate"]
    assert harness.locks("security") == [] and harness.locks("dev") == []
    # Outputs were read once per apply, and sensitive values never reached the output lines.
    assert engine.stats.output_reads == {"security/us-east-1/echo": 1, "dev/us-east-1/consumer": 1}
    assert not any("s3cr3t" in line for lines in harness.lines.values() for line in lines)
    assert not any(
        "Value for undeclared variable" in line for line in harness.lines["security/us-east-1/echo"]
    )


def test_credentials_from_refarch_generated_backend_plan_output_destroy(
    harness: Harness,
) -> None:
    # Credentials assumed by refarch itself (no role_arn), the backend written as a generated
    # backend.tf, a generate block of the unit's own; then the other actions.
    path = "stage/us-east-1/echo"
    harness.add_unit(
        path,
        "stage",
        "echo",
        {"name": "stage"},
        via_backend_role=False,
        backend_generate=True,
        generate=(
            Generate(name="locals", path="extra.tf", contents='output "generated" {\n  value = "yes"\n}\n'),
        ),
    )
    engine = TerraformEngine(harness.settings)
    applied = ok(engine.execute(harness.job(path, via_backend_role=False)), harness, path)
    assert applied.outputs is not None and applied.outputs["generated"] == "yes"
    assert harness.state_keys("stage") == [f"{path}/terraform.tfstate"]

    planned = ok(engine.execute(harness.job(path, "plan", via_backend_role=False)), harness, path)
    assert planned.outputs is None
    assert any("No changes" in line for line in harness.lines[path])

    read = ok(engine.execute(harness.job(path, "output", via_backend_role=False)), harness, path)
    assert read.outputs == applied.outputs
    assert engine.read_outputs(harness.job(path, via_backend_role=False)) == applied.outputs

    ok(engine.execute(harness.job(path, "destroy", via_backend_role=False)), harness, path)
    assert engine.read_outputs(harness.job(path, via_backend_role=False)) == {}
    assert harness.locks("stage") == []


def test_a_held_lock_fails_with_the_lock_message_after_the_timeout(harness: Harness) -> None:
    path = "dev/us-east-1/echo"
    harness.add_unit(path, "dev", "echo", {"name": "dev"})
    lock_id = f"{bucket_for('dev')}/{path}/terraform.tfstate"
    harness.client("dynamodb", "dev").put_item(
        TableName=LOCK_TABLE,
        Item={
            "LockID": {"S": lock_id},
            "Info": {"S": '{"ID":"other-run","Operation":"OperationTypeApply","Who":"x"}'},
        },
    )
    engine = TerraformEngine(harness.settings)
    result = engine.execute(harness.job(path, lock_timeout="1s"))
    assert not result.process.ok
    assert "Error acquiring the state lock" in result.process.output_tail
    assert harness.locks("dev") == [lock_id]  # never force-unlocked


def test_sigint_mid_apply_releases_the_lock_and_the_next_apply_works(harness: Harness) -> None:
    path = "security/us-east-1/slow"
    # size=700 keeps Terraform 1.0.3 busy for ~4 s with the state lock held.
    harness.add_unit(path, "security", "slow", {"size": 700})
    engine = TerraformEngine(harness.settings)
    interrupt = Interrupt()
    lock_seen = threading.Event()
    job = harness.job(path, interrupt=interrupt)

    def interrupt_once_locked() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if harness.locks("security"):
                lock_seen.set()
                interrupt.request()
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=interrupt_once_locked, daemon=True)
    watcher.start()
    result = engine.execute(job)
    watcher.join(timeout=5)

    assert lock_seen.is_set(), "the apply never took the lock"
    assert result.process.interrupted and not result.process.ok
    assert result.process.argv[1] == "apply"
    assert result.outputs is None
    assert any("Gracefully shutting down" in line for line in harness.lines[path])
    assert harness.locks("security") == []

    again = ok(engine.execute(harness.job(path)), harness, path)
    assert again.outputs == {"work": sum(i * j for i in range(700) for j in range(700))}


def test_git_source_is_cloned_at_its_ref_and_an_unreachable_one_is_a_clear_error(
    harness: Harness,
    tmp_path: Path,
) -> None:
    origin = tmp_path / "origin"
    shutil.copytree(FIXTURES / "modules", origin)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    for argv in (
        ["git", "init", "-q"],
        ["git", "add", "."],
        ["git", "commit", "-qm", "v1"],
        ["git", "tag", "v1"],
    ):
        subprocess.run(argv, cwd=origin, env=env, check=True)
    (origin / "echo" / "main.tf").write_text("this is not terraform after v1\n")
    subprocess.run(["git", "commit", "-qam", "broken"], cwd=origin, env=env, check=True)

    path = "dev/us-east-1/echo"
    unit = harness.add_unit(path, "dev", "echo", {"name": "from-git"})
    harness.units[path] = replace(unit, source=f"git::file://{origin}//echo?ref=v1")
    engine = TerraformEngine(harness.settings)
    result = ok(engine.execute(harness.job(path)), harness, path)
    assert result.outputs is not None and result.outputs["greeting"] == "hello from-git"

    # --source replaces the source root and keeps the //subdir, as --terragrunt-source does.
    local = ok(engine.execute(harness.job(path, "plan", source_override=tmp_path / "modules")), harness, path)
    assert local.process.ok

    harness.units[path] = replace(unit, source="git::file:///nowhere/modules.git//echo?ref=v1")
    with pytest.raises(ModuleSourceError, match=r"unit dev/us-east-1/echo: cannot use module"):
        engine.execute(harness.job(path))


ROOT_HCL = """
locals {
  account = read_terragrunt_config(find_in_parent_folders("account.hcl")).locals
}

remote_state {
  backend = "s3"
  config = {
    bucket         = "acme-${local.account.account_name}-tf-state"
    key            = "${path_relative_to_include()}/terraform.tfstate"
    region         = "us-east-1"
    dynamodb_table = "terraform-locks"
    encrypt        = true
    role_arn       = "arn:aws:iam::${local.account.aws_account_id}:role/OrganizationAccountAccessRole"
  }
}

inputs = {
  account_name = local.account.account_name
}
"""

ECHO_UNIT = """
include "root" {
  path = find_in_parent_folders("root.hcl")
}

terraform {
  source = "../../../../modules//echo"
}

inputs = {
  name = "%s"
}
"""

CONSUMER_UNIT = """
include "root" {
  path = find_in_parent_folders("root.hcl")
}

terraform {
  source = "../../../../modules//consumer"
}

dependency "echo" {
  config_path  = "%s"
  mock_outputs = { greeting = "mock", details = { size = 0 } }
}

inputs = {
  upstream_greeting = dependency.echo.outputs.greeting
  upstream_details  = dependency.echo.outputs.details
}
"""


def write_live(root: Path, units: Mapping[str, str]) -> None:
    (root / "root.hcl").write_text(ROOT_HCL)
    for account in {path.split("/")[0] for path in units}:
        (root / account).mkdir(exist_ok=True)
        (root / account / "account.hcl").write_text(
            f'locals {{\n  account_name = "{account}"\n  aws_account_id = "{ACCOUNTS[account]}"\n}}\n'
        )
    for path, text in units.items():
        (root / path).mkdir(parents=True, exist_ok=True)
        (root / path / "terragrunt.hcl").write_text(text)


def test_runner_applies_a_live_repo_with_the_terraform_engine(harness: Harness) -> None:
    from refarch import load_repo, plan
    from refarch.events import UnitFinished
    from refarch.runner.run import RunOptions, run

    write_live(
        harness.root,
        {
            "security/us-east-1/echo": ECHO_UNIT % "security",
            "dev/us-east-1/echo": ECHO_UNIT % "developer",
            "dev/us-east-1/consumer": CONSUMER_UNIT % "../../../security/us-east-1/echo",
        },
    )
    repo = load_repo(harness.root, env=harness.base_env, settings=harness.settings, cache=False)
    engine = TerraformEngine(harness.settings)
    events: list[Any] = []
    report = run(
        plan(repo, "apply"),
        "apply",
        harness.settings,
        engine=engine,
        base_env=harness.base_env,
        on_event=events.append,
        options=RunOptions(parallelism=2),
    )
    failures = [e.message for e in events if isinstance(e, UnitFinished)]
    assert report.ok, failures
    # Applied units hand their outputs to dependents: nothing had to be read separately.
    assert report.output_reads == ()
    assert engine.stats.output_reads == dict.fromkeys(repo.units, 1)
    assert harness.state_keys("dev") == [
        "dev/us-east-1/consumer/terraform.tfstate",
        "dev/us-east-1/echo/terraform.tfstate",
    ]

    outputs = run(plan(repo, "output"), "output", harness.settings, engine=engine, base_env=harness.base_env)
    assert outputs.ok
    assert outputs.outputs["dev/us-east-1/consumer"] == {"summary": "hello security (8 letters)"}
    assert harness.locks("security") == [] and harness.locks("dev") == []
