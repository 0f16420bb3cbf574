"""AMI builds without Packer: output parsing, refusal rules, the record, the retry loop."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from refarch.aws import AwsSessions
from refarch.errors import ConfigError, ProcessFailed, UsageError
from refarch.exec.process import LineCallback, ProcessResult
from refarch.jobs.amis import (
    AmiBuild,
    AmiEvent,
    AmisSettings,
    build_amis,
    check_sharing,
    list_templates,
    prune_amis,
)
from refarch.models import Account, Repo, Unit
from refarch.provision.ami_record import AmiStore, render_auto_hcl
from refarch.provision.ami_retention import Image, image_from, plan_retention, referenced_amis
from refarch.provision.packer_output import human_line, parse_artifact_ids, parse_errors
from refarch.settings import Settings, settings_from_dict
from tests.conftest import ACCOUNTS

PACKER_DIR = Path(__file__).resolve().parents[2] / "packer"

# Captured from Packer 1.6.6 building against the moto server (trimmed).
REAL_OUTPUT = """\
1795458131,,ui,say,==> amazon-ebs.node: Creating AMI refarch-node-20261123182211 from instance i-6e
1795458132,amazon-ebs.node,artifact-count,1
1795458132,amazon-ebs.node,artifact,0,builder-id,mitchellh.amazonebs
1795458132,amazon-ebs.node,artifact,0,id,us-east-1:ami-0c09366dd4308a328
1795458132,amazon-ebs.node,artifact,0,string,AMIs were created:\\nus-east-1: ami-0c09366dd4308a328\\n
1795458132,amazon-ebs.node,artifact,0,files-count,0
1795458132,amazon-ebs.node,artifact,0,end
""".splitlines()

REAL_FAILURE = """\
1795458306,,ui,error,Build 'amazon-ebs.bastion' errored after 4 milliseconds: x
1795458306,,error-count,1
1795458306,amazon-ebs.bastion,error,Error querying AMI: RequestError: send request \
failed\\ncaused by: Post "http://127.0.0.1:5999/": dial tcp 127.0.0.1:5999: connect: connection \
refused
""".splitlines()


# -- parsing -----------------------------------------------------------------------------------


def test_artifact_ids_from_real_packer_output() -> None:
    assert parse_artifact_ids(REAL_OUTPUT) == {"amazon-ebs.node": {"us-east-1": "ami-0c09366dd4308a328"}}


def test_artifact_ids_with_several_regions_use_escaped_commas() -> None:
    line = (
        "1,amazon-ebs.bastion,artifact,0,id,"
        "us-east-1:ami-0123456789abcdef0%!(PACKER_COMMA)us-west-2:ami-0fedcba9876543210"
    )
    assert parse_artifact_ids([line]) == {
        "amazon-ebs.bastion": {"us-east-1": "ami-0123456789abcdef0", "us-west-2": "ami-0fedcba9876543210"}
    }


def test_lines_that_are_not_ids_are_ignored() -> None:
    lines = ["not machine readable", "1,amazon-ebs.x,artifact,0,id,us-east-1:not-an-ami", "", "1,"]
    assert parse_artifact_ids(lines) == {}


def test_errors_are_unescaped() -> None:
    (error,) = parse_errors(REAL_FAILURE)
    assert error.startswith("Error querying AMI: RequestError: send request failed\ncaused by")


def test_human_line_shows_ui_text_only() -> None:
    assert human_line(REAL_OUTPUT[0]).startswith("==> amazon-ebs.node: Creating AMI")  # type: ignore[union-attr]
    assert human_line(REAL_OUTPUT[1]) is None
    assert human_line("1,,ui,say,a%!(PACKER_COMMA) b") == "a, b"


# -- refusal rules -----------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "alias/aws/ebs", "arn:aws:kms:us-east-1:222222222222:alias/aws/ebs"])
def test_encrypted_shared_ami_needs_a_customer_managed_key(key: str | None) -> None:
    with pytest.raises(ConfigError, match="default aws/ebs key") as caught:
        check_sharing(True, key, ["dev"], "us-east-1")
    assert "customer-managed KMS key" in (caught.value.hint or "")


@pytest.mark.parametrize(
    ("encrypt", "key", "share"),
    [
        (True, "arn:aws:kms:us-east-1:222222222222:key/1234", ["dev"]),
        (True, "alias/amis", ["dev"]),
        (True, None, []),
        (False, None, ["dev"]),
    ],
)
def test_allowed_combinations(encrypt: bool, key: str | None, share: list[str]) -> None:
    check_sharing(encrypt, key, share, "us-east-1")


def test_settings_reject_unknown_keys_and_bad_values() -> None:
    with pytest.raises(ConfigError, match="unknown key"):
        AmisSettings.from_settings(settings_from_dict({"amis": {"regoins": []}}))
    with pytest.raises(ConfigError, match="kms_key_id"):
        AmisSettings.from_settings(settings_from_dict({"amis": {"kms_key_id": 3}}))
    per_region = AmisSettings.from_settings(
        settings_from_dict({"amis": {"kms_key_id": {"us-west-2": "alias/amis"}}})
    )
    assert per_region.kms_key_for("us-west-2") == "alias/amis"
    assert per_region.kms_key_for("us-east-1") is None


def test_templates_of_the_packer_folder() -> None:
    assert list_templates(PACKER_DIR) == ("bastion", "ecs-node", "openvpn")


# -- the record --------------------------------------------------------------------------------


def _build(template: str, region: str, ami: str) -> AmiBuild:
    return AmiBuild(
        template,
        region,
        ami,
        "shared-services",
        "222222222222",
        "b1",
        ("444444444444",),
        "created",
        1,
        "log",
        "2024-01-01T00:00:00+00:00",
    )


def test_record_merges_and_writes_both_files(tmp_path: Path) -> None:
    store = AmiStore(tmp_path)
    store.add(_build("ecs-node", "us-east-1", "ami-00000000000000001"))
    store.add(_build("bastion", "us-west-2", "ami-00000000000000002"))
    # A later run that rebuilds one AMI keeps the others.
    again = AmiStore(tmp_path)
    again.add(_build("ecs-node", "us-east-1", "ami-00000000000000003"))
    assert again.ids() == {
        "bastion": {"us-west-2": "ami-00000000000000002"},
        "ecs-node": {"us-east-1": "ami-00000000000000003"},
    }
    data = json.loads((tmp_path / ".refarch" / "amis.json").read_text())
    assert data["amis"]["ecs-node"]["us-east-1"]["shared_with"] == ["444444444444"]
    hcl = (tmp_path / "amis.auto.hcl").read_text()
    assert '"ecs-node" = {\n      "us-east-1" = "ami-00000000000000003"' in hcl
    assert not list((tmp_path / ".refarch").glob(".*.tmp")), "no temporary file is left behind"


def test_auto_hcl_is_valid_hcl_with_the_ids() -> None:
    import hcl2

    text = render_auto_hcl({"openvpn": {"us-east-1": "ami-0123456789abcdef0"}})
    parsed = hcl2.loads(text)  # python-hcl2 keeps the quotes of keys and strings
    assert parsed["locals"][0]["ami_ids"] == {'"openvpn"': {'"us-east-1"': '"ami-0123456789abcdef0"'}}


def test_a_broken_record_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / ".refarch").mkdir()
    (tmp_path / ".refarch" / "amis.json").write_text("{")
    with pytest.raises(ConfigError, match=r"amis\.json"):
        AmiStore(tmp_path)


# -- build_amis with a fake Packer (in-process moto for the accounts) --------------------------


class FakePacker:
    """Stands in for `packer build`: registers an image in the account whose credentials it
    was given (so the test proves the credentials are the target account's), then prints the
    artifact lines. `failures` are outputs of failed attempts, consumed first."""

    def __init__(self, failures: Sequence[str] = ()) -> None:
        self.failures = list(failures)
        self.calls: list[tuple[list[str], dict[str, str]]] = []
        self.variables: list[dict[str, Any]] = []

    def __call__(
        self,
        argv: Sequence[str],
        *,
        cwd: str | Path,
        env: Mapping[str, str],
        on_line: LineCallback | None = None,
        log_path: Path | None = None,
        **_: Any,
    ) -> ProcessResult:
        self.calls.append((list(argv), dict(env)))
        var_file = next(a for a in argv if a.startswith("-var-file="))
        variables = json.loads(Path(var_file.removeprefix("-var-file=")).read_text())
        self.variables.append(variables)
        name = next(a for a in argv if a.startswith("-only=")).removeprefix("-only=")
        if self.failures:
            lines = [f"1,{name},error,{self.failures.pop(0)}"]
            return self._result(argv, cwd, 1, lines, on_line)
        ec2 = boto3.client(
            "ec2",
            region_name=variables["region"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=env.get("AWS_SESSION_TOKEN"),
        )
        instance = ec2.run_instances(ImageId=_source_ami(ec2), MinCount=1, MaxCount=1)
        ami = ec2.create_image(
            InstanceId=instance["Instances"][0]["InstanceId"], Name=f"fake-{variables['build_id']}"
        )["ImageId"]
        if variables["ami_users"]:
            ec2.modify_image_attribute(
                ImageId=ami, LaunchPermission={"Add": [{"UserId": u} for u in variables["ami_users"]]}
            )
        lines = ["1,,ui,say,==> building", f"1,{name},artifact,0,id,{variables['region']}:{ami}"]
        return self._result(argv, cwd, 0, lines, on_line)

    @staticmethod
    def _result(
        argv: Sequence[str], cwd: str | Path, code: int, lines: list[str], on_line: LineCallback | None
    ) -> ProcessResult:
        for line in lines:
            if on_line:
                on_line("stdout", line)
        return ProcessResult(tuple(argv), str(cwd), code, "\n".join(lines), "", 0.0)


def _source_ami(ec2: Any) -> str:
    images = ec2.describe_images(
        Owners=["amazon"], Filters=[{"Name": "name", "Values": ["amzn2-ami-hvm-*-x86_64-gp2"]}]
    )["Images"]
    return str(images[0]["ImageId"])


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def _repo(root: Path, settings: Settings) -> Repo:
    accounts = tuple(
        Account(
            name,
            ACCOUNTS[name],
            2 if name == "shared-services" else 3,
            ("us-east-1", "us-west-2") if name == "dev" else ("us-east-1",),
        )
        for name in ("shared-services", "dev", "stage", "prod")
    )
    return Repo(root=root, units={}, accounts=accounts, settings=settings)


def _run(
    tmp_path: Path, packer: FakePacker, toml: dict[str, Any] | None = None, **kwargs: Any
) -> tuple[Any, list[AmiEvent], list[float]]:
    settings = settings_from_dict(
        {"amis": {"packer_dir": str(PACKER_DIR), **(toml or {})}}, path=tmp_path / "refarch.toml"
    )
    events: list[AmiEvent] = []
    sleeps: list[float] = []
    record = build_amis(
        _repo(tmp_path, settings),
        settings,
        sessions=AwsSessions(settings),
        runner=packer,
        on_event=events.append,
        sleep=sleeps.append,
        env={"PATH": "/usr/bin", "SECRET": "x"},
        **kwargs,
    )
    return record, events, sleeps


def test_builds_every_template_and_region_in_the_target_account(aws: None, tmp_path: Path) -> None:
    packer = FakePacker()
    record, events, _ = _run(tmp_path, packer)
    # dev runs in two regions: every template is built in both, shared with dev/stage/prod.
    assert sorted((b.template, b.region) for b in record.builds) == [
        (t, r) for t in ("bastion", "ecs-node", "openvpn") for r in ("us-east-1", "us-west-2")
    ]
    build = next(b for b in record.builds if b.template == "ecs-node" and b.region == "us-west-2")
    assert build.account_id == ACCOUNTS["shared-services"]
    assert build.shared_with == (ACCOUNTS["dev"], ACCOUNTS["stage"], ACCOUNTS["prod"])
    assert build.sharing == "exists"  # Packer's ami_users already granted it
    ec2 = AwsSessions(Settings()).client("ec2", ACCOUNTS["shared-services"], "us-west-2")
    (image,) = ec2.describe_images(ImageIds=[build.ami_id])["Images"]
    assert image["OwnerId"] == ACCOUNTS["shared-services"]
    assert record.ids["ecs-node"]["us-west-2"] == build.ami_id
    assert len(re.findall(r'= "ami-[0-9a-f]+"', (tmp_path / "amis.auto.hcl").read_text())) == 6
    # The child gets the assumed role's credentials and an allow-listed environment only.
    argv, env = packer.calls[0]
    assert env["AWS_SESSION_TOKEN"] and "SECRET" not in env and env["CHECKPOINT_DISABLE"] == "1"
    assert argv[:4] == ["packer", "build", "-machine-readable", "-color=false"]
    assert {e.kind for e in events} >= {"start", "output", "built", "shared"}


def test_refarch_grants_launch_permission_packer_did_not(aws: None, tmp_path: Path) -> None:
    class NoSharing(FakePacker):
        def __call__(self, argv: Sequence[str], **kwargs: Any) -> ProcessResult:
            var_file = Path(next(a for a in argv if a.startswith("-var-file="))[10:])
            data = json.loads(var_file.read_text())
            var_file.write_text(json.dumps({**data, "ami_users": []}))
            return super().__call__(argv, **kwargs)

    record, _, _ = _run(
        tmp_path, NoSharing(), templates=["bastion"], regions=["us-east-1"], share_with=["dev"]
    )
    (build,) = record.builds
    assert build.sharing == "created"
    ec2 = AwsSessions(Settings()).client("ec2", ACCOUNTS["shared-services"], "us-east-1")
    perms = ec2.describe_image_attribute(ImageId=build.ami_id, Attribute="launchPermission")
    assert [p["UserId"] for p in perms["LaunchPermissions"]] == [ACCOUNTS["dev"]]


def test_transient_packer_error_is_retried(aws: None, tmp_path: Path) -> None:
    packer = FakePacker(failures=["Error querying AMI: RequestError: send request failed"])
    record, events, sleeps = _run(tmp_path, packer, templates=["bastion"], regions=["us-east-1"])
    assert record.builds[0].attempts == 2
    assert len(sleeps) == 1
    assert any(e.kind == "retry" and "packer-request-failed" in e.message for e in events)
    # Each attempt has its own build id, so the AMI name never collides with a half-done one.
    assert len({v["build_id"] for v in packer.variables}) == 2


def test_permanent_packer_error_fails_with_its_message(aws: None, tmp_path: Path) -> None:
    packer = FakePacker(failures=["No AMI was found matching filters"])
    with pytest.raises(ProcessFailed, match="No AMI was found matching filters") as caught:
        _run(tmp_path, packer, templates=["openvpn"], regions=["us-east-1"])
    assert "bastion" not in str(caught.value)
    assert len(packer.calls) == 1
    assert not (tmp_path / ".refarch" / "amis.json").exists()


def test_encrypt_boot_without_key_is_refused_before_building(aws: None, tmp_path: Path) -> None:
    packer = FakePacker()
    with pytest.raises(ConfigError, match="aws/ebs"):
        _run(tmp_path, packer, {"encrypt_boot": True})
    assert packer.calls == []
    record, _, _ = _run(
        tmp_path, packer, {"encrypt_boot": True}, templates=["bastion"], regions=["us-east-1"], share_with=[]
    )
    assert record.builds[0].shared_with == ()


def test_unknown_template_and_account(aws: None, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="nope"):
        _run(tmp_path, FakePacker(), templates=["nope"])
    with pytest.raises(ConfigError, match="no account named 'qa'"):
        _run(tmp_path, FakePacker(), share_with=["qa"])


def test_cli_refuses_encrypted_sharing_without_a_key(live_repo: Path, tmp_path: Path) -> None:
    import shutil

    from click.testing import CliRunner

    from refarch.cli import cli

    root = tmp_path / "live"
    shutil.copytree(live_repo, root, ignore=shutil.ignore_patterns(".refarch"))
    (root / "refarch.toml").write_text("[amis]\nencrypt_boot = true\n")
    result = CliRunner().invoke(cli, ["amis", "build", "--repo", str(root)])
    assert result.exit_code == 2
    assert "cannot be launched by other accounts" in result.output
    assert not (root / ".refarch" / "amis.json").exists()


def test_ids_already_in_amis_auto_hcl_are_kept(tmp_path: Path) -> None:
    """`refarch new` writes placeholders for every template; building one keeps the others."""
    from refarch.render import AMI_PLACEHOLDER, hcl_value

    placeholders = {t: {"us-east-1": AMI_PLACEHOLDER} for t in ("ecs-node", "openvpn")}
    (tmp_path / "amis.auto.hcl").write_text(f"locals {{\n  ami_ids = {hcl_value(placeholders, 2)}\n}}\n")
    AmiStore(tmp_path).add(_build("openvpn", "us-east-1", "ami-00000000000000009"))
    assert AmiStore(tmp_path).existing == {
        "ecs-node": {"us-east-1": AMI_PLACEHOLDER},
        "openvpn": {"us-east-1": "ami-00000000000000009"},
    }


def test_a_computed_amis_auto_hcl_is_refused(tmp_path: Path) -> None:
    (tmp_path / "amis.auto.hcl").write_text("locals {\n  ami_ids = { a = { b = local.x } }\n}\n")
    with pytest.raises(ConfigError, match="literal AMI ids"):
        AmiStore(tmp_path)


def test_default_sharing_names_only_the_app_accounts_the_repo_has(aws: None, tmp_path: Path) -> None:
    settings = settings_from_dict({"amis": {"packer_dir": str(PACKER_DIR)}})
    repo = _repo(tmp_path, settings)
    repo = Repo(repo.root, {}, tuple(a for a in repo.accounts if a.name != "stage"), settings)
    record = build_amis(
        repo,
        settings,
        templates=["bastion"],
        regions=["us-east-1"],
        sessions=AwsSessions(settings),
        runner=FakePacker(),
        sleep=lambda _: None,
    )
    assert record.builds[0].shared_with == (ACCOUNTS["dev"], ACCOUNTS["prod"])


# -- a failed build, retention -----------------------------------------------------------------


def test_a_failed_build_keeps_the_last_good_id(aws: None, tmp_path: Path) -> None:
    record, _, _ = _run(tmp_path, FakePacker(), templates=["bastion"], regions=["us-east-1"])
    good = record.ids["bastion"]["us-east-1"]
    files = [tmp_path / ".refarch" / "amis.json", tmp_path / "amis.auto.hcl"]
    before = [f.read_bytes() for f in files]
    with pytest.raises(ProcessFailed):
        _run(
            tmp_path,
            FakePacker(failures=["No AMI was found matching filters"]),
            templates=["bastion"],
            regions=["us-east-1"],
        )
    assert [f.read_bytes() for f in files] == before
    assert good in before[1].decode() and "ami-00000000000000000" not in before[1].decode()


def _image(ami: str, created: str, template: str = "bastion", region: str = "us-east-1") -> Image:
    return Image(ami, template, region, f"refarch-{template}", created, created, (f"snap-{ami[4:]}",))


def test_retention_keeps_the_newest_the_recorded_and_the_referenced() -> None:
    images = [
        _image("ami-00000001", "2026-01-01T00:00:00.000Z"),
        _image("ami-00000002", "2026-01-02T00:00:00.000Z"),
        _image("ami-00000003", "2026-01-03T00:00:00.000Z"),
        _image("ami-00000004", "2026-01-04T00:00:00.000Z"),
        _image("ami-00000005", "2026-01-01T00:00:00.000Z", template="openvpn"),
    ]
    remove, kept = plan_retention(
        images, 1, recorded={"ami-00000002"}, references={"ami-00000001": ("dev/us-east-1/bastion",)}
    )
    assert [i.ami_id for i in remove] == ["ami-00000003"]
    assert {k.image.ami_id: k.reason for k in kept} == {
        "ami-00000004": "newest",
        "ami-00000002": "recorded in .refarch/amis.json",
        "ami-00000001": "referenced by dev/us-east-1/bastion",
        "ami-00000005": "newest",  # each template and region keeps its own
    }
    remove, _ = plan_retention(images, 3)
    assert [i.ami_id for i in remove] == ["ami-00000001"]


def test_references_are_found_anywhere_in_a_units_inputs() -> None:
    units = [
        Unit(
            "dev/us-east-1/ecs", "dev", None, None, inputs={"cluster": {"amis": ["x ami-0123456789abcdef0"]}}
        ),
        Unit("prod/us-east-1/ecs", "prod", None, None, inputs={"ami_id": "ami-0123456789abcdef0"}),
        Unit("dev/us-east-1/vpc", "dev", None, None, inputs={"name": "not-ami-x", "count": 3}),
    ]
    assert referenced_amis(units) == {"ami-0123456789abcdef0": ("dev/us-east-1/ecs", "prod/us-east-1/ecs")}


def test_only_refarchs_tagged_images_are_candidates() -> None:
    tagged = {
        "ImageId": "ami-00000001",
        "Tags": [{"Key": "ManagedBy", "Value": "refarch"}, {"Key": "refarch:template", "Value": "bastion"}],
        "BlockDeviceMappings": [{"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": "snap-1"}}],
    }
    assert image_from(tagged, "us-east-1") == Image(
        "ami-00000001", "bastion", "us-east-1", "", "", "", ("snap-1",)
    )
    assert image_from({**tagged, "Tags": [{"Key": "refarch:template", "Value": "x"}]}, "us-east-1") is None


def test_images_say_which_repo_built_them() -> None:
    from refarch.provision.ami_retention import repo_tags

    assert repo_tags("github.com/acme/infrastructure-live") == {
        "refarch:repo": "github.com/acme/infrastructure-live",
        "refarch:org": "acme",
    }
    assert repo_tags("git@gitlab.example:platform/live") == {
        "refarch:repo": "git@gitlab.example:platform/live",
        "refarch:org": "platform",
    }
    assert repo_tags("live")["refarch:org"] == ""


def test_prune_needs_a_count(aws: None, tmp_path: Path) -> None:
    settings = settings_from_dict({"amis": {"packer_dir": str(PACKER_DIR)}})
    with pytest.raises(UsageError, match="no retention count") as caught:
        prune_amis(_repo(tmp_path, settings), settings, sessions=AwsSessions(settings))
    assert "[amis] keep" in (caught.value.hint or "")
    with pytest.raises(ConfigError, match="keep"):
        AmisSettings.from_settings(settings_from_dict({"amis": {"keep": 0}}))


def test_cli_takes_the_repo_as_dir(live_repo: Path, tmp_path: Path) -> None:
    import shutil

    from click.testing import CliRunner

    from refarch.cli import cli

    root = tmp_path / "live"
    shutil.copytree(live_repo, root, ignore=shutil.ignore_patterns(".refarch"))
    (root / "refarch.toml").write_text("[amis]\nencrypt_boot = true\n")
    # DIR first, like every other command (the refusal shows the repo's settings were read).
    result = CliRunner().invoke(cli, ["amis", "build", str(root), "bastion"])
    assert result.exit_code == 2 and "cannot be launched by other accounts" in result.output
    result = CliRunner().invoke(cli, ["amis", "build", "bastion"])
    assert result.exit_code == 2 and "refarch amis build DIR [TEMPLATE...]" in result.output
    result = CliRunner().invoke(cli, ["amis", "build", "--repo", str(root), "bastion"])
    assert result.exit_code == 2 and "--repo is deprecated" in result.output
