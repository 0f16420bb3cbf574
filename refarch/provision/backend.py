"""The Terraform state backend: S3 buckets and DynamoDB lock tables from the units' remote_state."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from refarch.errors import ConfigError, ProvisionError
from refarch.models import Unit
from refarch.provision import ChangeSet, Result, error_code, tags_list
from refarch.settings import BackendSettings

# The remote_state.config keys refarch reads, with Terragrunt's meaning.
BUCKET_KEYS = (
    "s3_bucket_tags",
    "skip_bucket_versioning",
    "skip_bucket_ssencryption",
    "bucket_sse_algorithm",
    "bucket_sse_kms_key_id",
    "skip_bucket_enforced_tls",
    "skip_bucket_root_access",
    "skip_bucket_public_access_blocking",
    "accesslogging_bucket_name",
    "accesslogging_target_prefix",
    "disable_bucket_update",
)
TABLE_KEYS = ("dynamodb_table_tags", "enable_lock_table_ssencryption")
DEFAULT_LOG_PREFIX = "TFStateLogs/"
TLS_SID = "EnforcedTLS"
ROOT_SID = "RootAccess"
LOG_DELIVERY_SID = "S3ServerAccessLogsPolicy"
PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


BackendConfig = BackendSettings  # `[backend]` of refarch.toml, read by refarch.settings


@dataclass(frozen=True)
class BucketSpec:
    """One state bucket as the units want it."""

    name: str
    region: str
    account_id: str
    versioning: bool = True
    encryption: bool = True
    sse_algorithm: str = "AES256"
    kms_key_id: str | None = None
    enforce_tls: bool = True
    root_access: bool = True
    public_access_block: bool = True
    tags: Mapping[str, str] = field(default_factory=dict)
    access_log_bucket: str | None = None
    access_log_prefix: str = DEFAULT_LOG_PREFIX
    log_delivery: bool = False  # True for an access-log bucket: S3 logging may write into it
    update_existing: bool = True  # False: Terragrunt's disable_bucket_update
    units: tuple[str, ...] = ()
    tls_note: str = ""  # why the TLS-only statement is left out, when it is


@dataclass(frozen=True)
class TableSpec:
    """One lock table as the units want it."""

    name: str
    region: str
    account_id: str
    encryption: bool = True
    point_in_time_recovery: bool = True
    tags: Mapping[str, str] = field(default_factory=dict)
    units: tuple[str, ...] = ()


_Spec = TypeVar("_Spec", BucketSpec, TableSpec)


def _flag(unit: Unit, root: Path, config: Mapping[str, Any], key: str) -> bool:
    value = config.get(key, False)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise ConfigError(
            f"remote_state.config.{key} must be true or false, not {value!r}",
            path=root / unit.path / "terragrunt.hcl",
        )
    return value


def _text(unit: Unit, root: Path, config: Mapping[str, Any], key: str) -> str | None:
    value = config.get(key)
    if value is not None and not (isinstance(value, str) and value):
        raise ConfigError(
            f"remote_state.config.{key} must be a non-empty string", path=root / unit.path / "terragrunt.hcl"
        )
    return value


def _tags(unit: Unit, root: Path, config: Mapping[str, Any], key: str) -> dict[str, str]:
    value = config.get(key) or {}
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"remote_state.config.{key} must be a map of strings", path=root / unit.path / "terragrunt.hcl"
        )
    return {str(k): str(v) for k, v in value.items()}


def specs_from_units(
    units: Iterable[Unit],
    defaults: BackendConfig,
    *,
    root: Path,
    default_region: str,
    endpoint_url: str | None = None,
) -> tuple[list[BucketSpec], list[TableSpec]]:
    """Every distinct bucket and lock table the units' evaluated `remote_state` blocks name.

    Units sharing a bucket must agree on how it is set up; a disagreement (or one bucket in two
    accounts, since names are global) is a ConfigError naming both units.
    """
    tls = defaults.tls_policy_applies(endpoint_url)
    tls_note = (
        ""
        if tls
        else (
            f"not applied: the endpoint {endpoint_url} is plain http, so aws:SecureTransport is "
            "never true and a TLS-only policy would deny every request"
            if defaults.enforce_tls == "auto"
            else "not applied: [backend] enforce_tls = false"
        )
    )
    buckets: dict[str, BucketSpec] = {}
    tables: dict[tuple[str, str, str], TableSpec] = {}
    for unit in units:
        state = unit.remote_state
        if state is None or state.backend != "s3":
            continue
        config = state.config
        where = root / unit.path / "terragrunt.hcl"
        bucket = _text(unit, root, config, "bucket")
        if bucket is None:
            raise ConfigError("remote_state.config.bucket is missing", path=where)
        if not unit.account_id:
            raise ConfigError(
                f"unit {unit.path} has no account id, so its state bucket has no owner",
                path=where,
                hint="set aws_account_id in account.hcl",
            )
        region = _text(unit, root, config, "region") or unit.region or default_region
        kms_key = _text(unit, root, config, "bucket_sse_kms_key_id") or defaults.kms_key_id
        algorithm = _text(unit, root, config, "bucket_sse_algorithm") or ("aws:kms" if kms_key else "AES256")
        spec = BucketSpec(
            name=bucket,
            region=region,
            account_id=unit.account_id,
            versioning=not _flag(unit, root, config, "skip_bucket_versioning"),
            encryption=not _flag(unit, root, config, "skip_bucket_ssencryption"),
            sse_algorithm=algorithm,
            kms_key_id=kms_key if algorithm == "aws:kms" else None,
            enforce_tls=tls and not _flag(unit, root, config, "skip_bucket_enforced_tls"),
            tls_note=tls_note
            or (
                "not applied: skip_bucket_enforced_tls"
                if _flag(unit, root, config, "skip_bucket_enforced_tls")
                else ""
            ),
            root_access=not _flag(unit, root, config, "skip_bucket_root_access"),
            public_access_block=not _flag(unit, root, config, "skip_bucket_public_access_blocking"),
            tags={**defaults.tags, **_tags(unit, root, config, "s3_bucket_tags")},
            access_log_bucket=_text(unit, root, config, "accesslogging_bucket_name"),
            access_log_prefix=_text(unit, root, config, "accesslogging_target_prefix") or DEFAULT_LOG_PREFIX,
            update_existing=not _flag(unit, root, config, "disable_bucket_update"),
            units=(unit.path,),
        )
        _merge(buckets, bucket, spec, where)
        if spec.access_log_bucket:
            log = replace(
                spec,
                name=spec.access_log_bucket,
                versioning=False,
                sse_algorithm="AES256",
                kms_key_id=None,
                access_log_bucket=None,
                log_delivery=True,
            )
            _merge(buckets, log.name, log, where)
        table = _text(unit, root, config, "dynamodb_table") or _text(unit, root, config, "lock_table")
        if table:
            key = (unit.account_id, region, table)
            tspec = TableSpec(
                name=table,
                region=region,
                account_id=unit.account_id,
                encryption=_flag(unit, root, config, "enable_lock_table_ssencryption")
                if "enable_lock_table_ssencryption" in config
                else True,
                point_in_time_recovery=defaults.point_in_time_recovery,
                tags={**defaults.tags, **_tags(unit, root, config, "dynamodb_table_tags")},
                units=(unit.path,),
            )
            if key in tables:
                tspec = _same(tables[key], tspec, where)
            tables[key] = tspec
    return sorted(buckets.values(), key=lambda b: (b.log_delivery is False, b.name)), sorted(
        tables.values(), key=lambda t: (t.account_id, t.region, t.name)
    )


def _merge(buckets: dict[str, BucketSpec], name: str, spec: BucketSpec, where: Path) -> None:
    if name in buckets:
        spec = _same(buckets[name], spec, where)
    buckets[name] = spec


def _same(old: _Spec, new: _Spec, where: Path) -> _Spec:
    """`old` with `new`'s unit added, or a ConfigError when the two want different things."""
    if replace(new, units=old.units) != old:
        raise ConfigError(
            f"{type(old).__name__.removesuffix('Spec').lower()} {old.name} is configured "
            f"differently by {old.units[0]} and {new.units[0]}",
            path=where,
            hint="make the remote_state.config of every unit that shares it agree "
            "(account, region, skip_* flags, tags)",
        )
    return replace(old, units=(*old.units, *new.units))


# -- S3 -----------------------------------------------------------------------------------


def tls_statement(bucket: str) -> dict[str, Any]:
    """Deny every request to the bucket that does not arrive over TLS (Terragrunt's policy)."""
    return {
        "Sid": TLS_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def root_statement(bucket: str, account_id: str) -> dict[str, Any]:
    """Let the account root do everything with the bucket, whatever else the policy says."""
    return {
        "Sid": ROOT_SID,
        "Effect": "Allow",
        "Principal": {"AWS": [f"arn:aws:iam::{account_id}:root"]},
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
    }


def log_delivery_statement(bucket: str, account_id: str) -> dict[str, Any]:
    """Let S3 server access logging write into an access-log bucket (no ACLs needed)."""
    return {
        "Sid": LOG_DELIVERY_SID,
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
        "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
    }


def policy_statements(spec: BucketSpec) -> list[dict[str, Any]]:
    """The statements refarch owns in a bucket's policy (others' statements are kept)."""
    statements = []
    if spec.root_access:
        statements.append(root_statement(spec.name, spec.account_id))
    if spec.log_delivery:
        statements.append(log_delivery_statement(spec.name, spec.account_id))
    if spec.enforce_tls:
        statements.append(tls_statement(spec.name))
    return statements


def merged_policy(current: Mapping[str, Any] | None, wanted: list[dict[str, Any]]) -> dict[str, Any]:
    """`current` with refarch's statements replaced by `wanted` (same Sid) or added."""
    sids = {s["Sid"] for s in wanted}
    kept = [s for s in (current or {}).get("Statement", []) if s.get("Sid") not in sids]
    return {"Version": "2012-10-17", "Statement": [*kept, *wanted]}


def owned_buckets(s3: Any) -> set[str]:
    """The buckets the client's account owns (one ListBuckets call)."""
    return {b["Name"] for b in s3.list_buckets().get("Buckets", [])}


def ensure_bucket(
    s3: Any,
    spec: BucketSpec,
    *,
    dry_run: bool = False,
    owned: set[str] | None = None,
) -> Result:
    """Make the state bucket exist and match `spec`; report each drift fixed.

    `owned` is the result of owned_buckets() for the account, when the caller already has it.
    """
    changes = ChangeSet(dry_run)
    owned = owned_buckets(s3) if owned is None else owned
    created = spec.name not in owned
    warnings: list[str] = []
    if created:
        _refuse_foreign(s3, spec)
        params: dict[str, Any] = {"Bucket": spec.name}
        if spec.region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": spec.region}
        changes.make(f"create bucket {spec.name} in {spec.region}", lambda: s3.create_bucket(**params))
    fixes = _bucket_fixes(s3, spec, fresh=created)
    for description, action in fixes:
        if created or spec.update_existing:
            changes.make(description, action)
        else:
            warnings.append(f"{description}: not done, disable_bucket_update is set")
    ids = {"arn": f"arn:aws:s3:::{spec.name}", "bucket": spec.name}
    if not spec.enforce_tls:
        ids["tls_policy"] = spec.tls_note or "not applied"
    return Result(
        "s3-bucket",
        spec.name,
        changes.status(created),
        spec.account_id,
        spec.region,
        ids,
        tuple(changes.changes),
        tuple(warnings),
        dry_run,
    )


def _refuse_foreign(s3: Any, spec: BucketSpec) -> None:
    try:
        s3.head_bucket(Bucket=spec.name)
    except Exception as exc:  # any error code but 404 means "exists elsewhere"
        if error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
            return
        if not error_code(exc):
            raise
    raise ProvisionError(
        f"bucket {spec.name} already exists and is owned by another account than "
        f"{spec.account_id} (used by {', '.join(spec.units)})",
        hint="bucket names are global: pick another name in remote_state.config.bucket",
    )


def _read(call: Any, missing: tuple[str, ...], **params: Any) -> Any:
    """The response of a Get* call, or None when the setting is not there at all."""
    try:
        return call(**params)
    except Exception as exc:
        if error_code(exc) in missing:
            return None
        raise


def _bucket_fixes(s3: Any, spec: BucketSpec, *, fresh: bool) -> list[tuple[str, Any]]:
    """(description, action) for every setting that differs; for a fresh bucket, all of them."""
    name = spec.name
    fixes: list[tuple[str, Any]] = []
    if spec.versioning and (
        fresh or _read(s3.get_bucket_versioning, (), Bucket=name).get("Status") != "Enabled"
    ):
        fixes.append(
            (
                f"enable versioning on {name}",
                lambda: s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"}),
            )
        )
    if spec.encryption:
        rule: dict[str, Any] = {"SSEAlgorithm": spec.sse_algorithm}
        if spec.kms_key_id:
            rule["KMSMasterKeyID"] = spec.kms_key_id
        current = (
            None
            if fresh
            else _read(
                s3.get_bucket_encryption, ("ServerSideEncryptionConfigurationNotFoundError",), Bucket=name
            )
        )
        rules = (current or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
        have = rules[0].get("ApplyServerSideEncryptionByDefault", {}) if rules else {}
        if {k: v for k, v in have.items() if k in ("SSEAlgorithm", "KMSMasterKeyID") and v} != rule:
            fixes.append(
                (
                    f"set default encryption {spec.sse_algorithm} on {name}",
                    lambda: s3.put_bucket_encryption(
                        Bucket=name,
                        ServerSideEncryptionConfiguration={
                            "Rules": [{"ApplyServerSideEncryptionByDefault": rule}]
                        },
                    ),
                )
            )
    if spec.public_access_block:
        current = (
            None
            if fresh
            else _read(s3.get_public_access_block, ("NoSuchPublicAccessBlockConfiguration",), Bucket=name)
        )
        if (current or {}).get("PublicAccessBlockConfiguration") != PUBLIC_ACCESS_BLOCK:
            fixes.append(
                (
                    f"block all public access to {name}",
                    lambda: s3.put_public_access_block(
                        Bucket=name, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK
                    ),
                )
            )
    wanted = policy_statements(spec)
    if wanted:
        raw = None if fresh else _read(s3.get_bucket_policy, ("NoSuchBucketPolicy",), Bucket=name)
        current = json.loads(raw["Policy"]) if raw else None
        have_sids = {s.get("Sid"): s for s in (current or {}).get("Statement", [])}
        missing = [s["Sid"] for s in wanted if have_sids.get(s["Sid"]) != s]
        if missing:
            document = json.dumps(merged_policy(current, wanted))
            fixes.append(
                (
                    f"set bucket policy statement(s) {', '.join(missing)} on {name}",
                    lambda: s3.put_bucket_policy(Bucket=name, Policy=document),
                )
            )
    if spec.access_log_bucket:
        logging = {"TargetBucket": spec.access_log_bucket, "TargetPrefix": spec.access_log_prefix}
        current = None if fresh else _read(s3.get_bucket_logging, (), Bucket=name)
        if (current or {}).get("LoggingEnabled") != logging:
            fixes.append(
                (
                    f"send access logs of {name} to {spec.access_log_bucket}",
                    lambda: s3.put_bucket_logging(
                        Bucket=name, BucketLoggingStatus={"LoggingEnabled": logging}
                    ),
                )
            )
    wanted_tags = {t["Key"]: t["Value"] for t in tags_list(spec.tags)}
    raw_tags = None if fresh else _read(s3.get_bucket_tagging, ("NoSuchTagSet",), Bucket=name)
    have_tags = {t["Key"]: t["Value"] for t in (raw_tags or {}).get("TagSet", [])}
    if any(have_tags.get(k) != v for k, v in wanted_tags.items()):
        tag_set = [{"Key": k, "Value": v} for k, v in sorted({**have_tags, **wanted_tags}.items())]
        fixes.append((f"tag {name}", lambda: s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_set})))
    return fixes


# -- DynamoDB -----------------------------------------------------------------------------


def ensure_lock_table(
    dynamodb: Any,
    spec: TableSpec,
    *,
    dry_run: bool = False,
    wait_delay: int = 2,
) -> Result:
    """Make the lock table exist (LockID hash key, on-demand, encrypted, PITR) and match `spec`."""
    changes = ChangeSet(dry_run)
    name = spec.name
    table = _read(dynamodb.describe_table, ("ResourceNotFoundException",), TableName=name)
    created = table is None
    tags = tags_list(spec.tags)
    if created:
        params: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": [{"AttributeName": "LockID", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "LockID", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
            "Tags": tags,
        }
        if spec.encryption:
            params["SSESpecification"] = {"Enabled": True}
        changes.make(
            f"create lock table {name} in {spec.region}",
            lambda: create_table_and_wait(dynamodb, params, wait_delay),
        )
        arn = f"arn:aws:dynamodb:{spec.region}:{spec.account_id}:table/{name}"
    else:
        desc = table["Table"]
        arn = desc["TableArn"]
        if desc.get("KeySchema") != [{"AttributeName": "LockID", "KeyType": "HASH"}]:
            raise ProvisionError(
                f"table {name} in account {spec.account_id} {spec.region} exists without the "
                "LockID hash key, so Terraform cannot lock with it",
                hint="point remote_state.config.dynamodb_table at another name",
            )
        if desc.get("BillingModeSummary", {}).get("BillingMode") != "PAY_PER_REQUEST":
            changes.make(
                f"switch {name} to on-demand (PAY_PER_REQUEST)",
                lambda: dynamodb.update_table(TableName=name, BillingMode="PAY_PER_REQUEST"),
            )
        if spec.encryption:
            ensure_kms_encryption(dynamodb, name, desc, changes)
        have = {t["Key"]: t["Value"] for t in dynamodb.list_tags_of_resource(ResourceArn=arn).get("Tags", [])}
        missing = [t for t in tags if have.get(t["Key"]) != t["Value"]]
        if missing:
            changes.make(f"tag {name}", lambda: dynamodb.tag_resource(ResourceArn=arn, Tags=missing))
    if spec.point_in_time_recovery:
        ensure_point_in_time_recovery(dynamodb, name, changes, created=created)
    return Result(
        "dynamodb-table",
        name,
        changes.status(created),
        spec.account_id,
        spec.region,
        {"arn": arn, "table": name},
        tuple(changes.changes),
        (),
        dry_run,
    )


KMS_SSE = {"Enabled": True, "SSEType": "KMS"}


def create_table_and_wait(dynamodb: Any, params: Mapping[str, Any], wait_delay: int) -> None:
    """create_table, then wait until the table is active: what comes next uses it at once."""
    dynamodb.create_table(**params)
    dynamodb.get_waiter("table_exists").wait(
        TableName=params["TableName"], WaiterConfig={"Delay": wait_delay, "MaxAttempts": 60}
    )


def ensure_kms_encryption(dynamodb: Any, name: str, table: Mapping[str, Any], changes: ChangeSet) -> None:
    """Turn on KMS server-side encryption of table `name` (`table`: its description) unless on."""
    if table.get("SSEDescription", {}).get("Status") not in ("ENABLED", "ENABLING"):
        changes.make(
            f"enable KMS server-side encryption on {name}",
            lambda: dynamodb.update_table(TableName=name, SSESpecification=KMS_SSE),
        )


def ensure_point_in_time_recovery(dynamodb: Any, name: str, changes: ChangeSet, *, created: bool) -> None:
    """Turn on a table's point-in-time recovery unless it is on (a table just created is not)."""
    enabled = False
    if not created:
        backups = dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        enabled = (
            backups.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus") == "ENABLED"
        )
    if not enabled:
        changes.make(
            f"enable point-in-time recovery on {name}",
            lambda: dynamodb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            ),
        )
