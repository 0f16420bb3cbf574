"""`refarch config show DIR`: the effective settings and where each came from."""

from __future__ import annotations

import json

import click

from refarch.jobs.inspect_repo import ConfigRequest, show_config
from refarch.settings import EffectiveSetting


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
    result = show_config(ConfigRequest(directory, endpoint_url=endpoint_url, region=region, profile=profile))
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    click.echo(f"# {result.path or 'no refarch.toml: defaults, environment and flags only'}")
    width = max(len(row.key) for row in result.settings)
    for row in result.settings:
        click.echo(f"{row.key:<{width}} = {_value(row)}  # {_source(row)}")
    terraform = result.terraform
    version = terraform["version"] or "version unknown"
    click.echo(f"# Terraform the runs use: {terraform['path']} ({version}; from {terraform['source']})")


def _value(row: EffectiveSetting) -> str:
    return "(unset)" if row.value is None else json.dumps(row.value)


def _source(row: EffectiveSetting) -> str:
    return f"{row.source}:{row.line}" if row.line else row.source
