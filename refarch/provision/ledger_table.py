"""The shared ledger table refarch makes: its DynamoDB table (pk/sk, on-demand, encrypted,
point-in-time recovery) and the S3 bucket of the unit logs (versioned, encrypted, private)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from refarch.errors import ProvisionError
from refarch.provision import ChangeSet, Result, tags_list
from refarch.provision.backend import (
    BucketSpec,
    create_table_and_wait,
    ensure_bucket,
    ensure_kms_encryption,
    ensure_point_in_time_recovery,
)

KMS_ENCRYPTION = {"Enabled": True, "SSEType": "KMS"}
KEY_SCHEMA = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]


def ensure_ledger_table(
    dynamodb: Any,
    name: str,
    *,
    account_id: str,
    region: str,
    tags: Mapping[str, str] | None = None,
    dry_run: bool = False,
    wait_delay: int = 2,
) -> Result:
    """Make the ledger table exist as refarch's runs and account locks need it: partition key
    `pk`, sort key `sk` (strings), on-demand, KMS-encrypted, point-in-time recovery on."""
    changes = ChangeSet(dry_run)
    try:
        table = dynamodb.describe_table(TableName=name)["Table"]
    except dynamodb.exceptions.ResourceNotFoundException:
        table = None
    created = table is None
    if table is None:
        params: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            "KeySchema": KEY_SCHEMA,
            "BillingMode": "PAY_PER_REQUEST",
            "SSESpecification": KMS_ENCRYPTION,
            "Tags": tags_list(tags or {}),
        }
        changes.make(
            f"create ledger table {name} in {region}",
            lambda: create_table_and_wait(dynamodb, params, wait_delay),
        )
        arn = f"arn:aws:dynamodb:{region}:{account_id}:table/{name}"
    else:
        arn = table["TableArn"]
        if table.get("KeySchema") != KEY_SCHEMA:
            raise ProvisionError(
                f"table {name} in account {account_id} {region} exists without the pk/sk keys the "
                "refarch ledger needs",
                hint="set another [ledger] table in refarch.toml",
            )
        ensure_kms_encryption(dynamodb, name, table, changes)
    ensure_point_in_time_recovery(dynamodb, name, changes, created=created)
    return Result(
        "ledger-table",
        name,
        changes.status(created),
        account_id,
        region,
        {"arn": arn, "table": name},
        tuple(changes.changes),
        (),
        dry_run,
    )


def ensure_ledger(
    dynamodb: Any,
    s3: Any,
    *,
    table: str,
    bucket: BucketSpec,
    owned: set[str] | None = None,
    dry_run: bool = False,
    wait_delay: int = 2,
) -> list[Result]:
    """The ledger table and the unit-log bucket, each made or brought back into line."""
    return [
        ensure_ledger_table(
            dynamodb,
            table,
            account_id=bucket.account_id,
            region=bucket.region,
            tags=bucket.tags,
            dry_run=dry_run,
            wait_delay=wait_delay,
        ),
        replace(ensure_bucket(s3, bucket, owned=owned, dry_run=dry_run), kind="ledger-bucket"),
    ]
