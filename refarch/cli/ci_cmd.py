"""`refarch ci github|gitlab DIR`: emit the CI pipeline that plans pull requests and applies."""

from __future__ import annotations

from pathlib import Path

import click

from refarch import ci
from refarch.cli import changed
from refarch.cli.notices import show_notice
from refarch.cli.queue_options import exclude_option, include_option
from refarch.jobs.ci import CiRequest, CiResult, emit_ci


@click.command("ci")
@click.argument("system", type=click.Choice(ci.SYSTEMS))
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the files below this folder (default: the root of DIRECTORY's git repository).",
)
@click.option("--stdout", "to_stdout", is_flag=True, help="Print the files instead of writing them.")
@click.option("--force", is_flag=True, help="Replace files refarch did not generate.")
@click.option("--branch", help="The branch whose pushes apply (default: [ci] branch, main).")
@click.option(
    "--granularity",
    type=click.Choice(ci.GRANULARITIES),
    default="auto",
    show_default=True,
    help="One job per account, per tier, or per account unless a tier's accounts "
    "can only run one after the other (auto).",
)
@click.option(
    "--engine",
    type=click.Choice(["terraform", "terragrunt"]),
    default="terraform",
    show_default=True,
    help="The engine the jobs run (each job installs it).",
)
@click.option(
    "--terraform-version",
    help="The Terraform the jobs download (default: [engine] terraform_version, else 1.0.3).",
)
@click.option(
    "--terraform-sha256",
    help="SHA256 of terraform_<version>_linux_amd64.zip (default: [ci] terraform_sha256, refarch's pin).",
)
@click.option("--terragrunt-sha256", help="With --engine terragrunt: SHA256 of terragrunt_linux_amd64.")
@click.option(
    "--role-variable",
    default=ci.CiOptions.role_variable,
    show_default=True,
    help="The CI variable holding the ARN of the role apply jobs assume with OIDC.",
)
@click.option(
    "--plan-role-variable",
    default=ci.CiOptions.plan_role_variable,
    show_default=True,
    help="The same for the pull request's plan job (a read-only role).",
)
@click.option("--region", help="AWS region of the runners' session (default: refarch.toml's).")
@click.option(
    "--install",
    help="What the jobs pip-install (default: [ci] install): a wheel URL or path, git+URL@commit.",
)
@click.option("--install-sha256", help="SHA256 of the wheel --install names (default: [ci] install_sha256).")
@click.option(
    "--allow-local-ledger",
    is_flag=True,
    help="Emit even though [ledger] is local (a retried job then cannot continue its run).",
)
@include_option(
    "Only units matching this glob (their dependencies taken as applied): a pipeline for a selection."
)
@exclude_option("Leave out units matching this glob.")
@click.option(
    "--parallelism",
    "-j",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Units at once per job.",
)
@changed.option
def command(
    system: str,
    directory: str,
    out: Path | None,
    to_stdout: bool,
    force: bool,
    branch: str | None,
    granularity: str,
    engine: str,
    terraform_version: str | None,
    terraform_sha256: str | None,
    terragrunt_sha256: str | None,
    role_variable: str,
    plan_role_variable: str,
    region: str | None,
    install: str | None,
    install_sha256: str | None,
    allow_local_ledger: bool,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    parallelism: int,
    changed_since: str | None,
) -> None:
    """Emit a GitHub Actions or GitLab CI pipeline for the live repo DIRECTORY: a pull request
    job that plans what changed, and apply jobs, one per account (or tier), whose needs mirror
    the account tiers and the cross-account dependencies; with [ci] drift_schedule, a
    scheduled `refarch drift` job per account."""
    request = CiRequest(
        system,
        directory,
        out=out,
        write=not to_stdout,
        force=force,
        branch=branch,
        granularity=granularity,
        engine=engine,
        terraform_version=terraform_version,
        terraform_sha256=terraform_sha256,
        terragrunt_sha256=terragrunt_sha256,
        role_variable=role_variable,
        plan_role_variable=plan_role_variable,
        region=region,
        install=install,
        install_sha256=install_sha256,
        allow_local_ledger=allow_local_ledger,
        include=include,
        exclude=exclude,
        parallelism=parallelism,
        changed_since=changed_since,
    )
    show(emit_ci(request, on_event=show_notice), to_stdout=to_stdout)


def show(result: CiResult, *, to_stdout: bool) -> None:
    """The files (--stdout) or where they went; for GitLab, the calls to make once."""
    if to_stdout:
        for name, text in result.files.items():
            click.echo(f"# ==> {name} <==\n{text}")
    for path in result.written:
        click.echo(f"wrote {path}")
    if result.resource_group_calls:
        click.echo(
            "once, with a maintainer's token: apply jobs take their account's resource group oldest "
            "first (an older pipeline never applies after a newer one):",
            err=True,
        )
        for call in result.resource_group_calls:
            click.echo(f"  {call}", err=True)
    if result.drift_schedule_call is not None:
        click.echo(
            "once, with a maintainer's token: the pipeline schedule the drift jobs run on "
            "([ci] drift_schedule; a scheduled pipeline runs only them, never an apply):",
            err=True,
        )
        click.echo(f"  {result.drift_schedule_call}", err=True)
