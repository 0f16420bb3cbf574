"""The KMS administrator: an IAM user whose ARN goes into every CMK's cmk_administrator_iam_arns."""

from __future__ import annotations

import json
from typing import Any

from refarch.errors import ProvisionError
from refarch.provision import ChangeSet, Result, error_code, tags_list
from refarch.settings import DEFAULT_KMS_ADMIN_USER as DEFAULT_USER
from refarch.settings import KmsAdminSettings

POLICY_NAME = "refarch-kms-administration"
# What a key administrator does, without being able to use keys to encrypt or decrypt.
ADMIN_ACTIONS = (
    "kms:Create*",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
)


KmsAdminConfig = KmsAdminSettings  # `[kms_admin]` of refarch.toml, read by refarch.settings


def admin_policy() -> dict[str, Any]:
    """The inline policy of the administrator user: manage keys, never use them."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "KmsKeyAdministration",
                "Effect": "Allow",
                "Action": list(ADMIN_ACTIONS),
                "Resource": "*",
            }
        ],
    }


def ensure_kms_admin(
    iam: Any,
    user: str = DEFAULT_USER,
    *,
    account_id: str,
    dry_run: bool = False,
) -> Result:
    """Make the administrator user exist with its inline policy; report a changed policy."""
    changes = ChangeSet(dry_run)
    arn = f"arn:aws:iam::{account_id}:user/{user}"
    try:
        arn = iam.get_user(UserName=user)["User"]["Arn"]
        created = False
    except Exception as exc:
        if error_code(exc) != "NoSuchEntity":
            raise
        created = True
        changes.make(f"create IAM user {user}", lambda: iam.create_user(UserName=user, Tags=tags_list({})))
    wanted = admin_policy()
    current: Any = None
    if not created:
        try:
            current = iam.get_user_policy(UserName=user, PolicyName=POLICY_NAME)["PolicyDocument"]
        except Exception as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
    if isinstance(current, str):
        current = json.loads(current)
    if current != wanted:
        changes.make(
            f"put inline policy {POLICY_NAME} on {user}",
            lambda: iam.put_user_policy(
                UserName=user, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(wanted)
            ),
        )
    return Result(
        "kms-admin",
        user,
        changes.status(created),
        account_id,
        None,
        {"arn": arn},
        tuple(changes.changes),
        (),
        dry_run,
    )


def find_kms_admin(iam: Any, user: str = DEFAULT_USER) -> str | None:
    """The administrator's ARN when it exists (read-only: for runs that skip its account)."""
    try:
        return str(iam.get_user(UserName=user)["User"]["Arn"])
    except Exception as exc:
        if error_code(exc) == "NoSuchEntity":
            return None
        raise


def require_admins(arns: list[str]) -> list[str]:
    """Refuse to finish a bootstrap after which no KMS administrator would exist."""
    if not arns:
        raise ProvisionError(
            "no KMS administrator exists, so the CMKs would have nobody to manage them",
            hint="bootstrap the [kms_admin] account too, or list admins in [kms_admin] arns",
        )
    return sorted(set(arns))
