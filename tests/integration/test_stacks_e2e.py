"""A repo shaped like gruntwork-io/terragrunt-infrastructure-live-stacks-example, end to end.

`refarch stack generate`, `refarch plan` and `refarch apply --engine terraform` as a user runs
them (subprocesses), with the real Terraform 1.0.3, state in S3 and locks in DynamoDB on the
moto server, each account reached through STS assume-role. The catalog (units, a stack, and
provider-free modules) is either the local folder beside the live repo or a git repository
(a `git::file://` URL): the stacks' sources and the units' module sources then go through the
same git fetcher.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from refarch.aws import AwsSessions
from refarch.settings import Settings
from tests.conftest import ACCOUNTS, FIXTURES

pytestmark = pytest.mark.integration

REFARCH = [sys.executable, "-c", "from refarch.cli import main; main()"]
REGION = "us-east-1"
LOCKS = "terragrunt-example-tf-locks"
STACKS = {"non-prod": ACCOUNTS["dev"], "prod": ACCOUNTS["prod"]}  # the fixture's account ids
NON_PROD = "non-prod/us-east-1/stateful-lambda-service/.terragrunt-stack"
PROD = "prod/us-east-1/stateful-lambda-service/.terragrunt-stack/service/.terragrunt-stack"


def git(*args: str, cwd: Path) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


@pytest.fixture(params=["local", "git"])
def world(request, tmp_path, moto_server):
    shutil.copytree(FIXTURES / "stacks" / "example", tmp_path / "example")
    live = tmp_path / "example" / "live"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "EX_", "TG_"))}
    env.update(
        HOME=str(tmp_path),
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION=REGION,
        AWS_ENDPOINT_URL=moto_server.endpoint_url,
    )
    if request.param == "git":  # the catalog moves into a git repository; the folder is gone
        catalog = tmp_path / "catalog-repo"
        shutil.move(tmp_path / "example" / "catalog", catalog)
        git("init", "-q", "-b", "main", cwd=catalog)
        git("add", "-A", cwd=catalog)
        git("commit", "-q", "-m", "catalog", cwd=catalog)
        env["EX_CATALOG"] = f"git::file://{catalog}"
    sessions = AwsSessions(Settings(endpoint_url=moto_server.endpoint_url, region=REGION))
    for name, account_id in STACKS.items():
        s3 = sessions.client("s3", account_id, REGION, account_name=name)
        s3.create_bucket(Bucket=f"terragrunt-example-tf-state-{name}-{REGION}")
        sessions.client("dynamodb", account_id, REGION, account_name=name).create_table(
            TableName=LOCKS,
            KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

    class World:
        root = live
        kind = request.param
        endpoint = moto_server.endpoint_url

        def refarch(self, *args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*REFARCH, *args],
                env=env,
                cwd=tmp_path,
                text=True,
                capture_output=True,
                timeout=300,
                check=False,
            )

        def state_keys(self, name: str) -> list[str]:
            s3 = sessions.client("s3", STACKS[name], REGION, account_name=name)
            listing = s3.list_objects_v2(Bucket=f"terragrunt-example-tf-state-{name}-{REGION}")
            return sorted(item["Key"] for item in listing.get("Contents", []))

    return World()


def test_the_live_stacks_example_generates_plans_and_applies(world, tmp_path):
    generated = world.refarch("stack", "generate", str(world.root))
    assert generated.returncode == 0, generated.stderr
    assert (
        "prod/us-east-1/stateful-lambda-service/terragrunt.stack.hcl: generated, 3 unit(s) and 1 stack(s)"
        in (generated.stdout)
    )

    plan = world.refarch("plan", str(world.root), "--json")
    assert plan.returncode == 0, plan.stderr
    groups = json.loads(plan.stdout)["groups"]
    assert [sorted(g) for g in groups] == [
        [f"{NON_PROD}/db", f"{PROD}/db"],
        [f"{NON_PROD}/roles/lambda-iam-role-to-dynamodb", f"{PROD}/roles/lambda-iam-role-to-dynamodb"],
        [f"{NON_PROD}/service", f"{PROD}/service"],
    ]

    endpoint = ["--engine", "terraform", "--endpoint-url", world.endpoint]
    report_file = tmp_path / "report.json"
    applied = world.refarch(
        "apply", str(world.root), *endpoint, "--non-interactive", "--report", str(report_file)
    )
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert json.loads(report_file.read_text())["counts"] == {"succeeded": 6}
    assert world.state_keys("non-prod") == [
        f"{NON_PROD}/{unit}/tf.tfstate" for unit in ("db", "roles/lambda-iam-role-to-dynamodb", "service")
    ]
    assert len(world.state_keys("prod")) == 3

    output = world.refarch("output", str(world.root), *endpoint, "--non-interactive")
    assert output.returncode == 0, output.stderr
    outputs = json.loads(output.stdout[re.search(r"^\{", output.stdout, re.MULTILINE).start() :])
    service = outputs[f"{PROD}/service"]
    assert service["function_name"] == "stateful-lambda-service"
    # the nested stack's values, and the real outputs of the units its dependencies name
    assert service["settings"]["memory"] == 256
    assert service["settings"]["role"] == "arn:aws:iam::000000000000:role/stateful-lambda-service-role"
    assert service["settings"]["environment"] == {"DYNAMODB_TABLE": "stateful-lambda-service-db"}
    role = outputs[f"{NON_PROD}/roles/lambda-iam-role-to-dynamodb"]
    assert role["policy_resources"] == [
        "arn:aws:dynamodb:us-east-1:000000000000:table/stateful-lambda-service-dev-db"
    ]

    if world.kind == "git":  # cloned once per URL and ref, into the modules' source cache
        assert len(list((world.root / ".refarch/work/.sources").iterdir())) == 1

    again = world.refarch("stack", "generate", str(world.root))
    assert "generated" not in again.stdout and again.stdout.count("unchanged") == 2
