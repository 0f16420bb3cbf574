"""AMI retention: deregister older refarch-built images (and delete their snapshots) nobody uses.

An image is refarch's when Packer tagged it (`ManagedBy = refarch`, `refarch:template`, see
packer/common.pkr.hcl), and this repo's when it also carries the repo's identity
(`refarch:repo`, the git origin without credentials or `[ledger] repo`; `refarch:org` its
owner): several live repos may build into one account. Per template and region the newest
`keep` of this repo's images stay, and so does every image a unit's evaluated inputs name (an
`ami-...` anywhere in them) and the id recorded in `.refarch/amis.json` (the last good build,
which `amis.auto.hcl` hands to the units). The rest are deregistered and their EBS snapshots
deleted. Images without this repo's tags (another repo's, or built before refarch tagged the
repo) are never touched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from refarch.errors import AwsError
from refarch.models import Unit

AMI_IN_TEXT = re.compile(r"\bami-[0-9a-f]{8,17}\b")
MANAGED_BY = ("ManagedBy", "refarch")
TEMPLATE_TAG = "refarch:template"
BUILD_TAG = "refarch:build"
REPO_TAG = "refarch:repo"
ORG_TAG = "refarch:org"


def repo_tags(identity: str) -> dict[str, str]:
    """The tags that say which live repo built an image: its identity (e.g.
    `github.com/acme/infrastructure-live`) and its owner (`acme`; "" when it has none)."""
    parts = [p for p in identity.replace(":", "/").split("/") if p]
    org = parts[-2] if len(parts) >= 2 else ""
    return {REPO_TAG: identity[:256], ORG_TAG: org[:256]}


@dataclass(frozen=True)
class Image:
    """One refarch-built image as EC2 describes it."""

    ami_id: str
    template: str
    region: str
    name: str
    created: str  # CreationDate (ISO 8601, sorts as text)
    build: str  # the refarch:build tag (a timestamp-prefixed id)
    snapshots: tuple[str, ...]
    repo: str = ""  # the refarch:repo tag: the live repo that built it ("" before it was tagged)


@dataclass(frozen=True)
class KeptImage:
    """An image retention left in place, and why."""

    image: Image
    reason: str  # newest | recorded | referenced by <unit>, ...


@dataclass(frozen=True)
class Retention:
    """What one retention pass removed (deregistered, snapshots deleted) and kept."""

    keep: int
    removed: tuple[Image, ...]
    kept: tuple[KeptImage, ...]
    dry_run: bool = False


def _json_strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _json_strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _json_strings(item)


def referenced_amis(units: Iterable[Unit]) -> dict[str, tuple[str, ...]]:
    """AMI id -> the units whose evaluated inputs name it (anywhere in a value)."""
    found: dict[str, list[str]] = {}
    for unit in units:
        for text in _json_strings(dict(unit.inputs)):
            for ami in AMI_IN_TEXT.findall(text):
                if unit.path not in found.setdefault(ami, []):
                    found[ami].append(unit.path)
    return {ami: tuple(sorted(paths)) for ami, paths in found.items()}


def image_from(description: Mapping[str, Any], region: str) -> Image | None:
    """An Image from describe_images output; None when refarch's tags are missing."""
    tags = {t.get("Key"): t.get("Value") for t in description.get("Tags", [])}
    template = tags.get(TEMPLATE_TAG)
    if tags.get(MANAGED_BY[0]) != MANAGED_BY[1] or not template:
        return None
    snapshots = tuple(
        str(m["Ebs"]["SnapshotId"])
        for m in description.get("BlockDeviceMappings", [])
        if m.get("Ebs", {}).get("SnapshotId")
    )
    return Image(
        ami_id=str(description["ImageId"]),
        template=str(template),
        region=region,
        name=str(description.get("Name", "")),
        created=str(description.get("CreationDate", "")),
        build=str(tags.get(BUILD_TAG, "")),
        snapshots=snapshots,
        repo=str(tags.get(REPO_TAG) or ""),
    )


def plan_retention(
    images: Iterable[Image],
    keep: int,
    *,
    recorded: Iterable[str] = (),
    references: Mapping[str, Sequence[str]] | None = None,
) -> tuple[list[Image], list[KeptImage]]:
    """Split images into (remove, kept): per template and region the newest `keep` stay, and
    any recorded or referenced image stays whatever its age. Pure."""
    references = references or {}
    recorded_ids = set(recorded)
    groups: dict[tuple[str, str], list[Image]] = {}
    for image in images:
        groups.setdefault((image.template, image.region), []).append(image)
    remove: list[Image] = []
    kept: list[KeptImage] = []
    for key in sorted(groups):
        newest_first = sorted(groups[key], key=lambda i: (i.created, i.build, i.ami_id), reverse=True)
        for index, image in enumerate(newest_first):
            if index < keep:
                kept.append(KeptImage(image, "newest"))
            elif image.ami_id in recorded_ids:
                kept.append(KeptImage(image, "recorded in .refarch/amis.json"))
            elif image.ami_id in references:
                kept.append(KeptImage(image, "referenced by " + ", ".join(references[image.ami_id])))
            else:
                remove.append(image)
    return remove, kept


def list_images(
    ec2: Any, region: str, templates: Iterable[str] | None = None, *, repo: str | None = None
) -> list[Image]:
    """The account's own refarch-built images in `region` (optionally of some templates, and
    only those `repo` built)."""
    filters = [{"Name": f"tag:{MANAGED_BY[0]}", "Values": [MANAGED_BY[1]]}]
    if repo is not None:
        filters.append({"Name": f"tag:{REPO_TAG}", "Values": [repo]})
    wanted = set(templates) if templates is not None else None
    images = []
    for description in ec2.describe_images(Owners=["self"], Filters=filters).get("Images", []):
        image = image_from(description, region)
        if image is None or (wanted is not None and image.template not in wanted):
            continue
        if repo is None or image.repo == repo:  # the filter, checked again here
            images.append(image)
    return images


def remove_image(ec2: Any, image: Image) -> None:
    """Deregister the image, then delete its snapshots (a registered image pins them)."""
    try:
        ec2.deregister_image(ImageId=image.ami_id)
        for snapshot in image.snapshots:
            ec2.delete_snapshot(SnapshotId=snapshot)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise AwsError(
            f"could not remove AMI {image.ami_id} ({image.template}, {image.region}): {exc}",
            hint="check ec2:DeregisterImage and ec2:DeleteSnapshot in the building account's "
            "role; retention is safe to re-run",
        ) from None
