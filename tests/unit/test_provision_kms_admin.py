"""The KMS administrator user and its policy; bootstrap refuses to leave no administrator."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from refarch.errors import ConfigError, ProvisionError
from refarch.provision.kms_admin import (
    POLICY_NAME,
    KmsAdminConfig,
    admin_policy,
    ensure_kms_admin,
    find_kms_admin,
    require_admins,
)
from refarch.settings import settings_from_dict

ACCOUNT = "123456789012"


def test_policy_manages_keys_but_cannot_use_them() -> None:
    [statement] = admin_policy()["Statement"]
    assert statement["Effect"] == "Allow"
    assert {"kms:Create*", "kms:ScheduleKeyDeletion", "kms:Put*"} <= set(statement["Action"])
    for use in ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:*"):
        assert use not in statement["Action"]


def test_config_refuses_to_leave_no_administrator() -> None:
    with pytest.raises(ConfigError, match="no KMS administrator would exist"):
        KmsAdminConfig.from_settings(settings_from_dict({"kms_admin": {"create": False}}))
    with pytest.raises(ConfigError, match=r"kms_admin.arns\[0\] must be an IAM"):
        KmsAdminConfig.from_settings(settings_from_dict({"kms_admin": {"arns": ["bob"]}}))
    config = KmsAdminConfig.from_settings(
        settings_from_dict(
            {"kms_admin": {"create": False, "arns": ["arn:aws:iam::111111111111:role/KeyAdmins"]}}
        )
    )
    assert config.arns == ("arn:aws:iam::111111111111:role/KeyAdmins",)
    with pytest.raises(ProvisionError, match="no KMS administrator exists"):
        require_admins([])


@pytest.fixture
def iam() -> Any:
    with mock_aws():
        yield boto3.client("iam", region_name="us-east-1")


def test_user_made_once_and_policy_kept_in_line(iam: Any) -> None:
    assert find_kms_admin(iam) is None
    first = ensure_kms_admin(iam, account_id=ACCOUNT)
    assert first.status == "created"
    assert first.ids["arn"] == f"arn:aws:iam::{ACCOUNT}:user/refarch-kms-admin"
    assert find_kms_admin(iam) == first.ids["arn"]
    assert (ensure_kms_admin(iam, account_id=ACCOUNT).changes) == ()
    iam.put_user_policy(
        UserName="refarch-kms-admin",
        PolicyName=POLICY_NAME,
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "kms:Describe*", "Resource": "*"}],
            }
        ),
    )
    fixed = ensure_kms_admin(iam, account_id=ACCOUNT)
    assert (fixed.status, fixed.changes) == (
        "updated",
        (f"put inline policy {POLICY_NAME} on refarch-kms-admin",),
    )


def test_dry_run_creates_no_user(iam: Any) -> None:
    result = ensure_kms_admin(iam, account_id=ACCOUNT, dry_run=True)
    assert result.changes[0] == "create IAM user refarch-kms-admin"
    assert iam.list_users()["Users"] == []
