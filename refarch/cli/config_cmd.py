"""`refarch config show DIR`: the effective settings and where each came from."""

from __future__ import annotations

import json
from pathlib import Path

import click

from refarch.settings import EffectiveSetting, effective, load_settings

SCHEMA_VERSION = 1


@click.group("config")
def command() -> None:
    """Inspect refarch's settings (refarch.toml, the environment, flags)."""


@command.command("show")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--endpoint-url", help="AWS endpoint (moto, LocalStack, a VPC endpoint).")
@click.option("--region", help="Default AWS region.")
@click.option("--profile", help="AWS profile of the identity that assumes each account's role.")
@click.option("--json", "as_json", is_flag=True, help="Print the settings as JSON.")
def show(
    directory: str, endpoint_url: str | None, region: str | None, profile: str | None, as_json: bool
) -> None:
    """Print every setting of the live repo DIRECTORY with its effective value and where it
    came from: default, refarch.toml (with the line), bootstrap.hcl, environment or flag."""
    from refarch.engines.terraform import resolve_terraform  # noqa: PLC0415 - only when run
    from refarch.provision.declared import with_declared  # noqa: PLC0415 - evaluator only when run

    root = Path(directory)
    settings = load_settings(root).with_overrides(endpoint_url=endpoint_url, region=region, profile=profile)
    rows = effective(with_declared(root, settings))
    path = None if settings.path is None else str(settings.path)
    terraform = resolve_terraform(settings).with_version()  # what the runs will use
    if as_json:
        settings_json = [row.to_json() for row in rows]
        document = {
            "schema_version": SCHEMA_VERSION,
            "path": path,
            "settings": settings_json,
            "terraform": terraform.to_json(),
        }
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(f"# {path or 'no refarch.toml: defaults, environment and flags only'}")
    width = max(len(row.key) for row in rows)
    for row in rows:
        click.echo(f"{row.key:<{width}} = {_value(row)}  # {_source(row)}")
    version = terraform.version or "version unknown"
    click.echo(f"# Terraform the runs use: {terraform.path} ({version}; from {terraform.source})")


def _value(row: EffectiveSetting) -> str:
    return "(unset)" if row.value is None else json.dumps(row.value)


def _source(row: EffectiveSetting) -> str:
    return f"{row.source}:{row.line}" if row.line else row.source
