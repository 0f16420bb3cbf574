"""`refarch artifacts build DIR [NAME...]`: build the Lambda packages and Docker images that
artifacts.hcl declares, upload or push them, and record them in artifacts.auto.hcl."""

from __future__ import annotations

import click

from refarch.jobs.artifacts import ArtifactEvent, ArtifactsBuildRequest, run_artifacts_build


@click.group("artifacts")
def command() -> None:
    """Build the Lambda packages and Docker images the units deploy."""


@command.command("build")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.argument("names", nargs=-1)
@click.option("--quiet", "-q", is_flag=True, help="Show only what was built, not the builds' output.")
def build(directory: str, names: tuple[str, ...], quiet: bool) -> None:
    """Build what DIRECTORY's artifacts.hcl declares (only NAME... when given): each Lambda
    package named by its source's hash and uploaded to the artifact bucket of its accounts,
    each image tagged by its context's hash and pushed to the shared-services ECR. An
    unchanged source is not built again; a failed build keeps the last good one in
    artifacts.auto.hcl and exits 1."""

    def show(event: ArtifactEvent) -> None:
        if quiet and not event.message.startswith(("unchanged", "uploaded", "pushed", "build")):
            return
        click.echo(f"[{event.kind} {event.name}] {event.message}", err=True)

    report = run_artifacts_build(ArtifactsBuildRequest(directory, names), on_event=show)
    for result in report.results:
        colour = {"built": "green", "unchanged": None, "failed": "red"}[result.status]
        click.secho(f"{result.kind} {result.name}: {result.status} {result.reference}", fg=colour)
        if result.error:
            click.secho(result.error, fg="red", err=True)
    click.echo(f"recorded in {report.auto_hcl}")
    if report.exit_code:
        raise click.exceptions.Exit(report.exit_code)
