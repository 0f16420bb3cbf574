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
from refarch.models import Account, Repo
from refarch.provision.amis import AmiEvent, build_amis, list_templates
from refarch.run.process import run_process
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
    accounts = tuple(
        Account(name, account_id, 1, ("us-east-1",)) for name, account_id in ACCOUNTS.items()
    )
    return Repo(root=root, units={}, accounts=accounts, settings=settings)


def test_every_template_validates() -> None:
    templates = list_templates(PACKER_DIR)
    assert templates == ("bastion", "ecs-node", "openvpn")
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"),
           "CHECKPOINT_DISABLE": "1"}
    # The real build (SSH + provisioners) and the emulator one (communicator none).
    for extra in ([], ["-var", "communicator=none", "-var", "endpoint=http://127.0.0.1:1"]):
        result = run_process(["packer", "validate", *extra, "."], cwd=PACKER_DIR, env=env)
        assert result.ok, result.output_tail
        for template in templates:
            result = run_process(["packer", "validate", *extra, f"-only=amazon-ebs.{template}",
                                  "."], cwd=PACKER_DIR, env=env)
            assert result.ok, f"{template} {extra}: {result.output_tail}"


def test_packer_builds_shares_and_records_in_the_target_account(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, moto_server)
    sessions = AwsSessions(settings)
    events: list[AmiEvent] = []
    record = build_amis(
        _repo(tmp_path, settings), settings, regions=["us-east-1", "us-west-2"],
        sessions=sessions, on_event=events.append,
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
    record = build_amis(_repo(tmp_path, settings), settings, templates=["bastion"],
                        regions=["us-east-1"], share_with=["dev"])
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
    settings = _settings(tmp_path, moto_server,
                         templates={"openvpn": {"source_ami_name": "no-such-image-*"}})
    with pytest.raises(ProcessFailed, match="No AMI was found matching filters"):
        build_amis(_repo(tmp_path, settings), settings, templates=["openvpn"],
                   regions=["us-east-1"])
    assert not (tmp_path / ".refarch" / "amis.json").exists()
