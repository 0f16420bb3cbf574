"""Existing hosted zones: found by name, planned as `terraform import` for the route53 unit."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from refarch.errors import ConfigError
from refarch.provision.dns import DnsConfig, find_zone, public_zones, zone_for
from refarch.settings import settings_from_dict


def test_config_validation() -> None:
    config = DnsConfig.from_settings(settings_from_dict({"dns": {"domains": ["Acme.Example."]}}))
    assert config.domains == ("acme.example",)
    with pytest.raises(ConfigError, match=r"dns.domains\[0\] must be a DNS name"):
        DnsConfig.from_settings(settings_from_dict({"dns": {"domains": ["not a domain"]}}))


def test_zone_for_picks_the_most_specific_zone() -> None:
    zones = {"acme.example": "Z1", "dev.acme.example": "Z2"}
    assert zone_for(zones, "www.dev.acme.example") == ("dev.acme.example", "Z2")
    assert zone_for(zones, "*.acme.example") == ("acme.example", "Z1")
    assert zone_for(zones, "other.example") is None


@mock_aws
def test_public_zones_only_and_the_import_step() -> None:
    route53 = boto3.client("route53", region_name="us-east-1")
    public = route53.create_hosted_zone(Name="acme.example", CallerReference="a")["HostedZone"]
    route53.create_hosted_zone(
        Name="internal.acme.example",
        CallerReference="b",
        VPC={"VPCRegion": "us-east-1", "VPCId": "vpc-12345678"},
        HostedZoneConfig={"PrivateZone": True},
    )
    zone_id = public["Id"].rsplit("/", 1)[-1]
    zones = public_zones(route53)
    assert zones == {"acme.example": zone_id}
    result = find_zone(
        zones, "acme.example", account_id="123456789012", unit="shared-services/us-east-1/route53"
    )
    assert result is not None and result.status == "exists"
    assert result.ids["import"] == f"import aws_route53_zone.primary_domain {zone_id}"
    assert find_zone(zones, "missing.example", account_id="1", unit=None) is None
