"""Real Packer 1.6.6 builds the AMIs against the moto server, in an assumed-role account."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from refarch.aws import AwsSessions
from refarch.errors import ProcessFailed
from refarch.exec.process import run_process
from refarch.jobs.amis import AmiEvent, build_amis, list_templates, prune_amis
from refarch.models import Account, Repo, Unit
from refarch.settings import Settings, settings_from_dict
from tests.conftest import ACCOUNTS, MotoServer

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("packer") is None, reason="packer is not installed"),
]

PACKER_DIR = Path(__file__).resolve().parents[2] / "packer"
# moto lists no Ubuntu 22.04 image; the OpenVPN template is built from one it does list.
MOTO_UBUNTU = "ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-*"


def _settings(tmp_path: Path, moto: MotoServer, **amis: Any) -> Settings:
    data = {
        "endpoint_url": moto.endpoint_url,
        "amis": {
            "packer_dir": str(PACKER_DIR),
            "tags": {"Team": "platform"},
            "templates": {"openvpn": {"source_ami_name": MOTO_UBUNTU}},
            **amis,
        },
    }
    return settings_from_dict(data, path=tmp_path / "refarch.toml")


def _repo(root: Path, settings: Settings) -> Repo:
    accounts = tuple(Account(name, account_id, 1, ("us-east-1",)) for name, account_id in ACCOUNTS.items())
    return Repo(root=root, units={}, accounts=accounts, settings=settings)


def test_every_template_validates(tmp_path: Path) -> None:
    templates = list_templates(PACKER_DIR)
    assert templates == ("bastion", "ecs-node", "openvpn")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "CHECKPOINT_DISABLE": "1"}
    # The real build (SSH + provisioners) and the emulator one (communicator none).
    for extra in ([], ["-var", "communicator=none", "-var", "endpoint=http://127.0.0.1:1"]):
        result = run_process(["packer", "validate", *extra, "."], cwd=PACKER_DIR, env=env)
        assert result.ok, result.output_tail
        for template in templates:
            result = run_process(
                ["packer", "validate", *extra, f"-only=amazon-ebs.{template}", "."], cwd=PACKER_DIR, env=env
            )
            assert result.ok, f"{template} {extra}: {result.output_tail}"


def test_packer_builds_shares_and_records_in_the_target_account(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, moto_server)
    sessions = AwsSessions(settings)
    events: list[AmiEvent] = []
    record = build_amis(
        _repo(tmp_path, settings),
        settings,
        regions=["us-east-1", "us-west-2"],
        sessions=sessions,
        on_event=events.append,
    )
    assert sorted((b.template, b.region) for b in record.builds) == [
        (t, r) for t in ("bastion", "ecs-node", "openvpn") for r in ("us-east-1", "us-west-2")
    ]
    app_accounts = [ACCOUNTS["dev"], ACCOUNTS["stage"], ACCOUNTS["prod"]]
    for build in record.builds:
        # Seen from the target account (the assumed role), the AMI is its own.
        ec2 = sessions.client("ec2", ACCOUNTS["shared-services"], build.region, "shared-services")
        (image,) = ec2.describe_images(ImageIds=[build.ami_id], Owners=["self"])["Images"]
        assert image["OwnerId"] == ACCOUNTS["shared-services"]
        assert image["Name"] == f"refarch-{build.template}-{build.build_id}"
        tags = {t["Key"]: t["Value"] for t in image["Tags"]}
        assert tags["refarch:template"] == build.template
        assert tags["ManagedBy"] == "refarch" and tags["Team"] == "platform"
        # moto hides an AMI shared with another account from that account, so the sharing is
        # asserted as launch permissions on the owner's image rather than from dev/stage/prod.
        perms = ec2.describe_image_attribute(ImageId=build.ami_id, Attribute="launchPermission")
        assert sorted(p["UserId"] for p in perms["LaunchPermissions"]) == sorted(app_accounts)
        assert build.sharing == "exists"  # Packer's ami_users did it; refarch only checked
        log = (tmp_path / build.log_path).read_text()
        assert f"artifact,0,id,{build.region}:{build.ami_id}" in log

    data = json.loads((tmp_path / ".refarch" / "amis.json").read_text())
    assert data["amis"]["openvpn"]["us-west-2"]["ami_id"] == record.ids["openvpn"]["us-west-2"]
    hcl = (tmp_path / "amis.auto.hcl").read_text()
    assert f'"us-east-1" = "{record.ids["ecs-node"]["us-east-1"]}"' in hcl
    assert any(e.kind == "output" and "Creating AMI" in e.message for e in events)


def test_encrypted_ami_with_customer_key_is_shared(moto_server: MotoServer, tmp_path: Path) -> None:
    bootstrap = AwsSessions(_settings(tmp_path, moto_server))
    kms = bootstrap.client("kms", ACCOUNTS["shared-services"], "us-east-1", "shared-services")
    key = kms.create_key(Description="amis")["KeyMetadata"]["Arn"]
    settings = _settings(tmp_path, moto_server, encrypt_boot=True, kms_key_id=key)
    record = build_amis(
        _repo(tmp_path, settings), settings, templates=["bastion"], regions=["us-east-1"], share_with=["dev"]
    )
    (build,) = record.builds
    ec2 = bootstrap.client("ec2", ACCOUNTS["shared-services"], "us-east-1", "shared-services")
    # moto's CopyImage does not model encryption (the copy's snapshot says Encrypted: false),
    # so assert that Packer took the encrypting path, and that the copy is the shared AMI.
    log = (tmp_path / build.log_path).read_text()
    assert "Copying/Encrypting AMI" in log
    assert "Deregistering the AMI and deleting unencrypted temporary AMIs" in log
    perms = ec2.describe_image_attribute(ImageId=build.ami_id, Attribute="launchPermission")
    assert [p["UserId"] for p in perms["LaunchPermissions"]] == [ACCOUNTS["dev"]]


def test_a_failing_build_reports_packers_error(moto_server: MotoServer, tmp_path: Path) -> None:
    settings = _settings(tmp_path, moto_server, templates={"openvpn": {"source_ami_name": "no-such-image-*"}})
    with pytest.raises(ProcessFailed, match="No AMI was found matching filters"):
        build_amis(_repo(tmp_path, settings), settings, templates=["openvpn"], regions=["us-east-1"])
    assert not (tmp_path / ".refarch" / "amis.json").exists()


UNIT_READING_AMIS = """\
include "root" {
  path = find_in_parent_folders("root.hcl")
}

locals {
  # Written by `refarch amis build`; absent until the first build, hence the fallbacks.
  amis   = read_terragrunt_config(find_in_parent_folders("amis.auto.hcl", "amis.auto.hcl"),
                                  { locals = { ami_ids = {} } })
  region = read_terragrunt_config(find_in_parent_folders("region.hcl")).locals.aws_region
}

inputs = {
  ami_id = try(local.amis.locals.ami_ids["bastion"][local.region], null)
}
"""


def test_cli_builds_and_units_receive_the_ids(
    moto_server: MotoServer, live_repo: Path, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from refarch.cli import cli
    from refarch.repo import load_repo

    root = tmp_path / "live"
    shutil.copytree(live_repo, root, ignore=shutil.ignore_patterns(".refarch"))
    unit = root / "dev" / "us-east-1" / "bastion"
    unit.mkdir()
    (unit / "terragrunt.hcl").write_text(UNIT_READING_AMIS)
    (root / "refarch.toml").write_text(f'[amis]\npacker_dir = "{PACKER_DIR}"\n')
    before = load_repo(root).unit("dev/us-east-1/bastion")
    assert before.inputs["ami_id"] is None  # nothing built yet: the unit still loads

    result = CliRunner().invoke(
        cli,
        [
            "amis",
            "build",
            str(root),
            "bastion",
            "--endpoint-url",
            moto_server.endpoint_url,
            "--regions",
            "us-east-1",
            "--share-with",
            "dev,prod",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Creating AMI" in result.output  # Packer's output is streamed
    ids = json.loads((root / ".refarch" / "amis.json").read_text())["amis"]
    ami_id = ids["bastion"]["us-east-1"]["ami_id"]
    assert ami_id in result.output
    assert ids["bastion"]["us-east-1"]["shared_with"] == [ACCOUNTS["dev"], ACCOUNTS["prod"]]

    after = load_repo(root).unit("dev/us-east-1/bastion")
    assert after.inputs["ami_id"] == ami_id


def test_packers_transient_error_is_retried(moto_server: MotoServer, tmp_path: Path) -> None:
    """The first attempt talks to a closed port: real Packer's RequestError matches the
    packer-request-failed rule, and the second attempt (the real endpoint) succeeds."""
    calls: list[int] = []

    def flaky(argv: Any, **kwargs: Any) -> Any:
        calls.append(len(calls))
        if len(calls) == 1:
            var_file = Path(next(a for a in argv if a.startswith("-var-file="))[10:])
            values = json.loads(var_file.read_text())
            var_file.write_text(json.dumps({**values, "endpoint": "http://127.0.0.1:9"}))
        return run_process(argv, **kwargs)

    settings = _settings(tmp_path, moto_server)
    slept: list[float] = []
    events: list[AmiEvent] = []
    record = build_amis(
        _repo(tmp_path, settings),
        settings,
        templates=["bastion"],
        regions=["us-east-1"],
        share_with=[],
        runner=flaky,
        sleep=slept.append,
        on_event=events.append,
    )
    assert record.builds[0].attempts == 2 and len(slept) == 1
    assert any(e.kind == "retry" and "packer-request-failed" in e.message for e in events)
    log = (tmp_path / record.builds[0].log_path).read_text()
    assert "connection refused" in log and "# refarch: attempt 2" in log


def test_retention_removes_exactly_the_unreferenced_images(moto_server: MotoServer, tmp_path: Path) -> None:
    """Four real builds of one template: the first is named by a unit, the last is recorded;
    retention with keep=1 (run by the fourth build) removes the two in between, snapshots too."""
    settings = _settings(tmp_path, moto_server)
    sessions = AwsSessions(settings)
    args: dict[str, Any] = {"templates": ["bastion"], "regions": ["us-east-1"], "share_with": []}
    ids = [
        build_amis(_repo(tmp_path, settings), settings, **args).ids["bastion"]["us-east-1"] for _ in range(3)
    ]
    ec2 = sessions.client("ec2", ACCOUNTS["shared-services"], "us-east-1", "shared-services")
    snapshots = {
        i["ImageId"]: [m["Ebs"]["SnapshotId"] for m in i["BlockDeviceMappings"] if "Ebs" in m]
        for i in ec2.describe_images(ImageIds=ids)["Images"]
    }
    assert all(snapshots[i] for i in ids), "moto gives each image its snapshot"
    someone_elses = ec2.copy_image(SourceImageId=ids[2], SourceRegion="us-east-1", Name="not-refarch")[
        "ImageId"
    ]
    # Every build says whose it is; another live repo's build of the same template in the same
    # account, and one built before refarch tagged the repo, are never candidates.
    tags = {t["Key"]: t["Value"] for t in ec2.describe_images(ImageIds=[ids[0]])["Images"][0]["Tags"]}
    assert tags["refarch:repo"] == tmp_path.name and tags["refarch:template"] == "bastion"
    others = []
    for name, extra in (
        ("other-repo", [{"Key": "refarch:repo", "Value": "github.com/acme/other-live"}]),
        ("legacy", []),
    ):
        other = ec2.copy_image(SourceImageId=ids[0], SourceRegion="us-east-1", Name=name)["ImageId"]
        refarch_tags = [
            {"Key": "ManagedBy", "Value": "refarch"},
            {"Key": "refarch:template", "Value": "bastion"},
        ]
        ec2.create_tags(Resources=[other], Tags=refarch_tags + extra)
        others.append(other)
    dry = prune_amis(_repo(tmp_path, settings), settings, keep=1, sessions=sessions, dry_run=True)
    assert dry.dry_run and {i.ami_id for i in dry.removed} == set(ids[:2])  # listed, not removed
    assert set(ids) <= {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}
    unit = Unit("dev/us-east-1/bastion", "dev", ACCOUNTS["dev"], "us-east-1", inputs={"ami_id": ids[0]})
    repo = Repo(
        root=tmp_path, units={unit.path: unit}, accounts=_repo(tmp_path, settings).accounts, settings=settings
    )

    record = build_amis(repo, settings, keep=1, **args)
    newest = record.ids["bastion"]["us-east-1"]
    assert record.retention is not None
    assert sorted(i.ami_id for i in record.retention.removed) == sorted(ids[1:])
    assert {k.image.ami_id: k.reason for k in record.retention.kept} == {
        newest: "newest",
        ids[0]: "referenced by dev/us-east-1/bastion",
    }
    left = {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}
    assert {ids[0], newest, someone_elses, *others} <= left and not left & set(ids[1:])
    remaining = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert not remaining & {s for i in ids[1:] for s in snapshots[i]}
    assert set(snapshots[ids[0]]) <= remaining
    # The recorded id is the newest build's, in both files.
    assert newest in (tmp_path / "amis.auto.hcl").read_text()
    # A second pass finds nothing more to remove.
    again = prune_amis(repo, settings, keep=1, sessions=sessions)
    assert again.removed == () and len(again.kept) == 2
