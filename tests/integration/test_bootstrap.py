"""refarch bootstrap against a real moto server: six accounts reached through STS assume-role.

Known moto gaps designed around here: a bucket policy with a Deny statement makes moto refuse
every object call on the bucket, so with the server's plain-http endpoint the TLS-only
statement is skipped (and the record says why); the policy document itself is asserted in
tests/unit/test_provision_backend.py. IAM permissions are not enforced by moto, so the
"denied call" below is injected with a botocore before-call hook.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from refarch.aws import AwsSessions
from refarch.config import load_repo
from refarch.errors import BootstrapFailed
from refarch.jobs.bootstrap import BootstrapEvent, bootstrap
from refarch.models import Repo
from refarch.provision import is_mutating
from refarch.provision.record import RECORD_PATH, read_record
from refarch.provision.secrets import password_env
from refarch.settings import Settings, load_settings
from tests.conftest import ACCOUNTS, FIXTURES, MotoServer
from tests.unit.test_contracts import check as check_contract

pytestmark = pytest.mark.integration

REFARCH_TOML = """
[keypairs]
names = ["openvpn", "default"]

[certificates]
internal = ["app.internal.acme.local"]
cloudfront = ["static.acme.example"]
public = ["www.acme.example"]

[secrets]
passwords = ["db_password"]

[kms_admin]
user = "refarch-kms-admin"

[dns]
domains = ["acme.example"]
account = "shared-services"
"""


class Calls:
    """Counts every AWS call by (service, operation), through AwsSessions' on_call hook."""

    def __init__(self) -> None:
        self.counter: Counter[tuple[str, str]] = Counter()

    def __call__(self, service: str, operation: str) -> None:
        self.counter[(service, operation)] += 1

    @property
    def mutating(self) -> list[str]:
        return sorted(f"{s}:{o}" for (s, o) in self.counter if is_mutating(s, o))


class DenyingSessions(AwsSessions):
    """AwsSessions whose clients for one account are denied one operation (moto does not
    enforce IAM, so the denial is injected where botocore would send the request)."""

    def __init__(self, settings: Settings, *, account_id: str, operation: str, on_call: Any = None) -> None:
        super().__init__(settings, on_call=on_call)
        self.denied_account = account_id
        self.denied_operation = operation

    def client(
        self,
        service: str,
        account_id: str | None = None,
        region: str | None = None,
        account_name: str | None = None,
    ) -> Any:
        client = super().client(service, account_id, region, account_name)
        if account_id == self.denied_account:

            def deny(model: Any, **_: Any) -> None:
                if model.name == self.denied_operation:
                    raise botocore.exceptions.ClientError(
                        {"Error": {"Code": "AccessDenied", "Message": "injected denial"}}, model.name
                    )

            client.meta.events.register("before-call.*.*", deny)
        return client


@pytest.fixture
def live(tmp_path: Path, moto_server: MotoServer) -> tuple[Repo, Settings]:
    root = tmp_path / "live"
    shutil.copytree(FIXTURES / "live", root)
    (root / "refarch.toml").write_text(REFARCH_TOML, encoding="utf-8")
    settings = load_settings(root, {"AWS_ENDPOINT_URL": moto_server.endpoint_url})
    return load_repo(root, settings=settings, cache=False), settings


def make_zone(sessions: AwsSessions, account: str, name: str) -> str:
    route53 = sessions.client("route53", ACCOUNTS[account], account_name=account)
    zone = route53.create_hosted_zone(Name=name, CallerReference=f"test-{name}")["HostedZone"]
    return str(zone["Id"]).rsplit("/", 1)[-1]


def test_cold_run_provisions_every_account_and_second_run_changes_nothing(
    live: tuple[Repo, Settings],
    tmp_path: Path,
) -> None:
    repo, settings = live
    calls = Calls()
    sessions = AwsSessions(settings, on_call=calls)
    zone_id = make_zone(sessions, "shared-services", "acme.example")
    events: list[BootstrapEvent] = []
    record = bootstrap(repo, settings, sessions=sessions, on_event=events.append)

    assert record.status == "done"
    assert set(record.ran) == set(ACCOUNTS)
    order = [e.account for e in events if e.kind == "account-start"]
    assert order[:2] == ["security", "shared-services"]  # tiers 1 and 2 before the rest
    assert set(order[2:]) == {"logs", "dev", "stage", "prod"}

    for name, account_id in ACCOUNTS.items():

        def client(
            service: str, region: str = "us-east-1", *, _id: str = account_id, _name: str = name
        ) -> Any:
            return sessions.client(service, _id, region, account_name=_name)

        regions = sorted(repo.account(name).regions)
        buckets = [b["Name"] for b in client("s3").list_buckets()["Buckets"]]
        assert buckets == sorted(f"acme-{name}-{r}-tf-state" for r in regions)
        for region in regions:
            bucket = f"acme-{name}-{region}-tf-state"
            s3 = client("s3", region)
            assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
            assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
            policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
            assert [s["Sid"] for s in policy["Statement"]] == ["RootAccess"]  # no TLS: http
            table = client("dynamodb", region).describe_table(TableName="terraform-locks")
            assert table["Table"]["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
            pairs = client("ec2", region).describe_key_pairs()["KeyPairs"]
            assert sorted(p["KeyName"] for p in pairs) == ["default", "openvpn"]
            imported = client("acm", region).list_certificates()["CertificateSummaryList"]
            assert "app.internal.acme.local" in {c["DomainName"] for c in imported}
        secrets = client("secretsmanager").list_secrets()["SecretList"]
        names = {s["Name"] for s in secrets}
        assert {
            "refarch/passwords/db_password",
            "refarch/keypairs/openvpn/private-key",
            "refarch/keypairs/openvpn/passphrase",
        } <= names
        users = [u["UserName"] for u in client("iam").list_users()["Users"]]
        assert users == (["refarch-kms-admin"] if name == "security" else [])
        cloudfront = client("acm", "us-east-1").list_certificates()["CertificateSummaryList"]
        assert "static.acme.example" in {c["DomainName"] for c in cloudfront}

    # The public certificate was requested where the zone is, and its CNAME written.
    shared = sessions.client("route53", ACCOUNTS["shared-services"], account_name="shared-services")
    cnames = [
        r
        for r in shared.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
        if r["Type"] == "CNAME"
    ]
    assert len(cnames) == 1 and cnames[0]["ResourceRecords"][0]["Value"].endswith("acm-validations.aws.")
    assert record.outputs["cmk_administrator_iam_arns"] == [
        f"arn:aws:iam::{ACCOUNTS['security']}:user/refarch-kms-admin"
    ]
    assert record.outputs["dns_imports"] == [
        {
            "domain": "acme.example",
            "account_id": ACCOUNTS["shared-services"],
            "zone_id": zone_id,
            "import": f"import aws_route53_zone.primary_domain {zone_id}",
        }
    ]
    assert any("plain http" in w for w in record.warnings)
    assert sum(e.kind == "warning" and "TLS-only" in e.message for e in events) == 1

    # The record on disk: private, complete, no secret in it.
    path = repo.root / RECORD_PATH
    assert path.stat().st_mode & 0o777 == 0o600
    text = path.read_text(encoding="utf-8")
    assert "PRIVATE KEY" not in text
    check_contract("bootstrap-record", json.loads(text))  # schemas/bootstrap-record.schema.json
    env = password_env(sessions, ACCOUNTS["dev"], "us-east-1", ["db_password"])
    assert len(env["TF_VAR_db_password"]) >= 32
    assert env["TF_VAR_db_password"] not in text

    # Second run: everything is checked, nothing is changed.
    calls.counter.clear()
    again = bootstrap(repo, settings, sessions=AwsSessions(settings, on_call=calls))
    assert calls.mutating == []
    assert again.nothing_to_do and again.status == "done"
    assert {r.status for r in again.results} == {"exists"}
    assert [w for r in again.results for w in r.warnings] == []


def test_a_failure_half_way_keeps_the_record_and_the_next_run_continues(
    live: tuple[Repo, Settings],
) -> None:
    repo, settings = live
    denying = DenyingSessions(settings, account_id=ACCOUNTS["logs"], operation="ImportKeyPair")
    with pytest.raises(BootstrapFailed, match="logs: An error occurred \\(AccessDenied\\)"):
        bootstrap(repo, settings, sessions=denying)

    record = read_record(repo.root / RECORD_PATH)
    assert record is not None and record.status == "failed"
    logs = record.accounts["logs"]
    assert logs.status == "failed" and "AccessDenied" in (logs.error or "")
    made = {(r.kind, r.name) for r in logs.results}
    assert ("s3-bucket", "acme-logs-us-east-1-tf-state") in made  # made before the denial
    assert all(record.accounts[n].status == "done" for n in ACCOUNTS if n != "logs")

    calls = Calls()
    events: list[BootstrapEvent] = []
    resumed = bootstrap(repo, settings, sessions=AwsSessions(settings, on_call=calls), on_event=events.append)
    assert resumed.status == "done"
    assert resumed.ran == ["logs"]
    assert sorted(resumed.resumed) == sorted(n for n in ACCOUNTS if n != "logs")
    statuses = {(r.kind, r.name, r.region): r.status for r in resumed.accounts["logs"].results}
    assert statuses[("s3-bucket", "acme-logs-us-east-1-tf-state", "us-east-1")] == "exists"
    assert statuses[("key-pair", "openvpn", "us-east-1")] == "created"
    # What the denial stopped is done now; what was made before it is not made again.
    assert calls.mutating == ["acm:ImportCertificate", "ec2:ImportKeyPair", "secretsmanager:CreateSecret"]


def test_dry_run_lists_exact_changes_and_makes_no_mutating_call(
    live: tuple[Repo, Settings],
) -> None:
    repo, settings = live
    calls = Calls()
    record = bootstrap(
        repo,
        settings,
        sessions=AwsSessions(settings, on_call=calls),
        dry_run=True,
        accounts=["dev", "security"],
    )
    assert calls.mutating == []
    assert record.status == "dry-run"
    assert not (repo.root / RECORD_PATH).exists()
    changes = record.changes
    assert "dev/us-west-2: create bucket acme-dev-us-west-2-tf-state in us-west-2" in changes
    assert "dev/us-west-2: create lock table terraform-locks in us-west-2" in changes
    assert "dev/us-east-1: import key pair openvpn in us-east-1" in changes
    assert "security: create IAM user refarch-kms-admin" in changes
    assert not any(c.startswith(("logs", "prod", "stage")) for c in changes)


def test_cli_second_run_says_nothing_to_do(
    live: tuple[Repo, Settings], tmp_path: Path, moto_server: MotoServer
) -> None:
    from click.testing import CliRunner

    from refarch.cli import cli

    repo, _ = live
    report = tmp_path / "report.json"
    keys = tmp_path / "keys"
    argv = [
        "bootstrap",
        str(repo.root),
        "--endpoint-url",
        moto_server.endpoint_url,
        "--accounts",
        "security,dev",
        "--keys-dir",
        str(keys),
    ]
    first = CliRunner().invoke(cli, [*argv, "--report", str(report)], env={"CI": "true"})
    assert first.exit_code == 0, first.output
    # In CI every line about one account names it, and the table rows are not wrapped.
    results = [line for line in first.output.splitlines() if line.endswith((": created", ": exists"))]
    assert results and all(line.startswith(("[security] ", "[dev] ")) for line in results), results
    lines = first.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:3] == ["account", "id", "status"])
    rows = [line.split() for line in lines[header + 1 : header + 3]]
    assert [row[0] for row in rows] == ["security", "dev"] and all(len(row) == 6 for row in rows)
    assert "create bucket acme-dev-us-west-2-tf-state in us-west-2" in first.output
    assert json.loads(report.read_text(encoding="utf-8"))["status"] == "done"
    # Private keys went to --keys-dir: owner-only folders and read-only files, never printed.
    key_file = keys / "dev" / "keypairs" / "openvpn" / "private-key"
    assert key_file.stat().st_mode & 0o777 == 0o400
    assert (keys / "dev").stat().st_mode & 0o777 == 0o700
    assert keys.stat().st_mode & 0o777 == 0o700  # --keys-dir itself, as the README says
    assert "PRIVATE KEY" not in first.output
    second = CliRunner().invoke(cli, argv)
    assert second.exit_code == 0, second.output
    assert "nothing to do" in second.output


def test_bootstrap_holds_the_repo_lock_and_is_refused_while_another_run_holds_it(
    live: tuple[Repo, Settings], moto_server: MotoServer
) -> None:
    from click.testing import CliRunner

    from refarch.cli import cli
    from refarch.runner.repo_lock import RepoBusy, repo_lock

    repo, settings = live
    # While an apply holds the repo, `refarch bootstrap` is refused at once, naming it.
    with repo_lock(repo.root, "refarch apply", "run-of-someone-else"):
        calls = Calls()
        with pytest.raises(RepoBusy, match="run-of-someone-else"):
            bootstrap(repo, settings, sessions=AwsSessions(settings, on_call=calls))
        assert calls.mutating == [] and not (repo.root / RECORD_PATH).exists()
        argv = ["bootstrap", str(repo.root), "--endpoint-url", moto_server.endpoint_url]
        refused = CliRunner().invoke(cli, [*argv, "--accounts", "security"], env={"CI": "true"})
        assert refused.exit_code == 2, refused.output
        assert "refarch apply" in refused.output and "run-of-someone-else" in refused.output

    # While bootstrap works, an apply (or another bootstrap) on the repo is refused.
    refusals: list[str] = []

    def try_to_take_it(event: BootstrapEvent) -> None:
        if event.kind == "account-start" and not refusals:
            try:
                with repo_lock(repo.root, "refarch apply"):
                    refusals.append("taken")
            except RepoBusy as exc:
                refusals.append(str(exc))

    record = bootstrap(repo, settings, accounts=["security"], on_event=try_to_take_it)
    assert record.status == "done"
    assert len(refusals) == 1 and "refarch bootstrap" in refusals[0]
