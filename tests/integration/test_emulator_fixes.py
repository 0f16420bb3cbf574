"""Each gap of moto that the real AWS provider trips on, shown on moto's bare application, and
its fix (refarch/jobs/emulator_fixes.py, or the embedded AWS's set-up) shown on the same call.

The requests are the ones hashicorp/aws 5.100 sends (same target, parameters and protocol),
made in-process through werkzeug's test client against moto's WSGI application.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.test import Client, TestResponse

from refarch.jobs.emulator_fixes import FIXES, EmulatorFixes
from tests.conftest import MotoServer

pytestmark = pytest.mark.integration

JSON_11 = "application/x-amz-json-1.1"
FORM = "application/x-www-form-urlencoded; charset=utf-8"


def _auth(service: str) -> str:
    scope = f"AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/{service}/aws4_request"
    return f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host;x-amz-date, Signature=0"


def _doc(response: TestResponse) -> Any:
    return json.loads(response.get_data())


class Apps:
    """moto's application bare and with refarch's fixes (one moto state behind both)."""

    def __init__(self) -> None:
        bare = DomainDispatcherApplication(create_backend_app)
        self.bare = Client(bare)
        self.fixed = Client(EmulatorFixes(bare))

    @staticmethod
    def json_call(client: Client, service: str, target: str, body: dict[str, Any]) -> TestResponse:
        headers = {"X-Amz-Target": target, "Authorization": _auth(service), "Content-Type": JSON_11}
        return client.post("/", data=json.dumps(body), headers=headers)

    @staticmethod
    def form_call(client: Client, service: str, params: dict[str, str]) -> TestResponse:
        headers = {"Authorization": _auth(service), "Content-Type": FORM}
        return client.post("/", data=urlencode(params), headers=headers)


@pytest.fixture
def apps(moto_server: MotoServer) -> Apps:
    return Apps()  # moto_server: the process's moto state is reset for this test


def test_cloudtrail_short_target_is_routed(apps: Apps) -> None:
    target = "CloudTrail_20131101.DescribeTrails"  # what the provider's SDK sends
    assert apps.json_call(apps.bare, "cloudtrail", target, {}).status_code == 404  # the gap
    fixed = apps.json_call(apps.fixed, "cloudtrail", target, {})
    assert fixed.status_code == 200 and _doc(fixed) == {"trailList": []}


def _ecs_service(apps: Apps, rebalancing: str) -> None:
    prefix = "AmazonEC2ContainerServiceV20141113."
    apps.json_call(apps.fixed, "ecs", prefix + "CreateCluster", {"clusterName": "c"})
    container = {"name": "app", "image": "nginx", "memory": 128}
    task = {"family": "app", "containerDefinitions": [container]}
    apps.json_call(apps.fixed, "ecs", prefix + "RegisterTaskDefinition", task)
    create = {
        "cluster": "c",
        "serviceName": "app",
        "taskDefinition": "app",
        "desiredCount": 1,
        "availabilityZoneRebalancing": rebalancing,
    }
    assert apps.json_call(apps.fixed, "ecs", prefix + "CreateService", create).status_code == 200


def test_ecs_service_without_awsvpc_has_no_empty_network_configuration(apps: Apps) -> None:
    _ecs_service(apps, "DISABLED")
    target, body = (
        "AmazonEC2ContainerServiceV20141113.DescribeServices",
        {"cluster": "c", "services": ["app"]},
    )
    (bare,) = _doc(apps.json_call(apps.bare, "ecs", target, body)).pop("services")
    assert bare["networkConfiguration"] == {}  # the gap: the provider panics on it
    (fixed,) = _doc(apps.json_call(apps.fixed, "ecs", target, body)).pop("services")
    assert "networkConfiguration" not in fixed
    assert all("networkConfiguration" not in d for d in fixed["deployments"])


def test_ecs_availability_zone_rebalancing_is_returned_as_sent(apps: Apps) -> None:
    _ecs_service(apps, "ENABLED")
    target, body = (
        "AmazonEC2ContainerServiceV20141113.DescribeServices",
        {"cluster": "c", "services": ["app"]},
    )
    (bare,) = _doc(apps.json_call(apps.bare, "ecs", target, body)).pop("services")
    assert "availabilityZoneRebalancing" not in bare  # the gap: the second plan sees a change
    (fixed,) = _doc(apps.json_call(apps.fixed, "ecs", target, body)).pop("services")
    assert fixed["availabilityZoneRebalancing"] == "ENABLED"


def test_run_instances_without_a_root_volume_size_takes_the_images(apps: Apps) -> None:
    images = apps.form_call(apps.fixed, "ec2", {"Action": "DescribeImages", "Version": "2016-11-15"})
    image = images.get_data(as_text=True).split("<imageId>", 1)[1].split("<", 1)[0]
    params = {
        "Action": "RunInstances",
        "Version": "2016-11-15",
        "ImageId": image,
        "MinCount": "1",
        "MaxCount": "1",
        "InstanceType": "t3.micro",
        "BlockDeviceMapping.1.DeviceName": "/dev/xvda",
        "BlockDeviceMapping.1.Ebs.Encrypted": "true",  # root_block_device { encrypted = true }
    }
    bare = apps.form_call(apps.bare, "ec2", params)
    assert bare.status_code == 400 and "size or snapshotId" in bare.get_data(as_text=True)  # the gap
    fixed = apps.form_call(apps.fixed, "ec2", params)
    assert fixed.status_code == 200, fixed.get_data(as_text=True)


def test_a_launch_templates_own_tags_stay_out_of_its_data(apps: Apps) -> None:
    create = {
        "Action": "CreateLaunchTemplate",
        "Version": "2016-11-15",
        "LaunchTemplateName": "lt",
        "LaunchTemplateData.ImageId": "ami-12c6146b",
        "LaunchTemplateData.TagSpecification.1.ResourceType": "volume",
        "LaunchTemplateData.TagSpecification.1.Tag.1.Key": "Name",
        "LaunchTemplateData.TagSpecification.1.Tag.1.Value": "disk",
        "TagSpecification.1.ResourceType": "launch-template",  # the template's own tags
        "TagSpecification.1.Tag.1.Key": "Team",
        "TagSpecification.1.Tag.1.Value": "a",
    }
    assert apps.form_call(apps.fixed, "ec2", create).status_code == 200
    describe = {
        "Action": "DescribeLaunchTemplateVersions",
        "Version": "2016-11-15",
        "LaunchTemplateName": "lt",
    }
    bare = apps.form_call(apps.bare, "ec2", describe).get_data(as_text=True)
    assert "<resourceType>launch-template</resourceType>" in bare  # the gap
    fixed = apps.form_call(apps.fixed, "ec2", describe).get_data(as_text=True)
    assert "<resourceType>launch-template</resourceType>" not in fixed
    assert "<resourceType>volume</resourceType><tagSet><item><key>Name</key><value>disk</value>" in fixed


def test_list_service_specific_credentials_answers_an_empty_list(apps: Apps) -> None:
    apps.form_call(apps.fixed, "iam", {"Action": "CreateUser", "UserName": "u", "Version": "2010-05-08"})
    params = {"Action": "ListServiceSpecificCredentials", "UserName": "u", "Version": "2010-05-08"}
    with pytest.raises(NotImplementedError, match="list_service_specific_credentials"):  # the gap
        apps.form_call(apps.bare, "iam", params)  # (the server answers 500, the provider retries)
    fixed = apps.form_call(apps.fixed, "iam", params)
    assert fixed.status_code == 200
    assert "<ServiceSpecificCredentials/>" in fixed.get_data(as_text=True)


def test_a_provisioned_rds_cluster_has_no_scaling_configuration_info(apps: Apps) -> None:
    create = {
        "Action": "CreateDBCluster",
        "Version": "2014-10-31",
        "DBClusterIdentifier": "c",
        "Engine": "aurora-postgresql",
        "EngineMode": "provisioned",
        "MasterUsername": "u",
        "MasterUserPassword": "password123",
    }
    assert apps.form_call(apps.fixed, "rds", create).status_code == 200
    describe = {"Action": "DescribeDBClusters", "Version": "2014-10-31"}
    bare = apps.form_call(apps.bare, "rds", describe).get_data(as_text=True)
    assert "<ScalingConfigurationInfo/>" in bare  # the gap: AWS sends it for Serverless v1 only
    fixed = apps.form_call(apps.fixed, "rds", describe).get_data(as_text=True)
    assert "ScalingConfigurationInfo" not in fixed and "<EngineMode>provisioned</EngineMode>" in fixed


def test_a_cloudfront_viewer_certificate_from_acm_is_not_the_default_one(apps: Apps) -> None:
    arn = "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-aaaa-bbbb-cccc-000000000001"
    config = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<DistributionConfig xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/">'
        "<CallerReference>x</CallerReference><Comment></Comment><Enabled>true</Enabled>"
        "<Origins><Quantity>1</Quantity><Items><Origin><Id>o</Id><DomainName>b.s3.amazonaws.com</DomainName>"
        "<S3OriginConfig><OriginAccessIdentity></OriginAccessIdentity></S3OriginConfig></Origin></Items></Origins>"
        "<DefaultCacheBehavior><TargetOriginId>o</TargetOriginId><ViewerProtocolPolicy>redirect-to-https"
        "</ViewerProtocolPolicy><MinTTL>0</MinTTL><ForwardedValues><QueryString>false</QueryString>"
        "<Cookies><Forward>none</Forward></Cookies></ForwardedValues></DefaultCacheBehavior>"
        f"<ViewerCertificate><ACMCertificateArn>{arn}</ACMCertificateArn><SSLSupportMethod>sni-only"
        "</SSLSupportMethod><MinimumProtocolVersion>TLSv1.2_2021</MinimumProtocolVersion></ViewerCertificate>"
        "</DistributionConfig>"
    )
    headers = {"Authorization": _auth("cloudfront"), "Content-Type": "application/xml"}
    created = apps.fixed.post("/2020-05-31/distribution", data=config, headers=headers)
    assert created.status_code == 201, created.get_data(as_text=True)
    default_true = "<CloudFrontDefaultCertificate>true</CloudFrontDefaultCertificate>"
    assert default_true not in created.get_data(as_text=True)
    path = created.headers["Location"].split("amazonaws.com", 1)[-1]
    bare = apps.bare.get(path, headers=headers).get_data(as_text=True)
    assert default_true in bare and arn in bare  # the gap
    for answer in (apps.fixed.get(path, headers=headers), apps.fixed.get(f"{path}/config", headers=headers)):
        text = answer.get_data(as_text=True)
        assert "<CloudFrontDefaultCertificate>false</CloudFrontDefaultCertificate>" in text, text
        assert "<CertificateSource>acm</CertificateSource>" in text and arn in text


def test_aws_managed_policies_are_loaded(monkeypatch: pytest.MonkeyPatch, moto_server: MotoServer) -> None:
    from moto.core.config import default_user_config
    from moto.iam.models import IAMBackend

    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    monkeypatch.setitem(default_user_config["iam"], "load_aws_managed_policies", False)
    assert admin not in IAMBackend("global", "999999999999").managed_policies  # moto's default
    monkeypatch.undo()
    # the embedded AWS (and the tests' server) switch them on: attaching one works
    params = {"Action": "CreateGroup", "GroupName": "g", "Version": "2010-05-08"}
    Apps.form_call(Apps().fixed, "iam", params)
    attach = {"Action": "AttachGroupPolicy", "GroupName": "g", "PolicyArn": admin, "Version": "2010-05-08"}
    assert Apps.form_call(Apps().fixed, "iam", attach).status_code == 200


def test_every_fix_has_a_test() -> None:
    assert set(FIXES) == {
        "cloudtrail-short-target",
        "ecs-network-configuration",
        "ecs-az-rebalancing",
        "ec2-root-volume-size",
        "ec2-launch-template-tags",
        "iam-service-specific-credentials",
        "rds-scaling-configuration",
        "cloudfront-acm-certificate",
    }
