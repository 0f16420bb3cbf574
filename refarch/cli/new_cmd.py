"""`refarch new DIR`: render a new infrastructure-live repo from live-templates/."""

from __future__ import annotations

import click

from refarch.errors import UsageError
from refarch.jobs.new_repo import NewRequest, new_repo
from refarch.render import FLAVOURS


def parse_accounts(text: str) -> dict[str, str]:
    """`security=111111111111,dev=444444444444` -> {name: id}, in the order given."""
    accounts: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, account_id = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(
                f"--accounts: {item!r} is not NAME=ID",
                hint="for example: --accounts security=111111111111,dev=444444444444",
            )
        if name.strip() in accounts:
            raise UsageError(f"--accounts: account {name.strip()!r} is given twice")
        accounts[name.strip()] = account_id.strip()
    return accounts


@click.command("new")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--org", required=True, help="Organisation name; prefixes buckets, tables, keys.")
@click.option(
    "--accounts",
    "accounts_text",
    required=True,
    metavar="NAME=ID,...",
    help="The accounts: security, shared-services, optionally logs, and the app "
    "accounts (dev, stage, prod ...), each with its 12-digit ID.",
)
@click.option(
    "--regions",
    required=True,
    metavar="REGION,...",
    help="AWS regions; the first is the primary one (security, logs, ECR, VPN).",
)
@click.option("--domain", help="The organisation's domain name (default: ORG.internal).")
@click.option(
    "--modules-source",
    metavar="URL_OR_PATH",
    help="Where the units' modules live (a git URL with ?ref=, or a folder); "
    "default: a copy of refarch's modules inside the new repo.",
)
@click.option(
    "--flavour",
    type=click.Choice(sorted(FLAVOURS)),
    default="aws",
    show_default=True,
    help="aws: real AWS modules; demo: provider-free modules Terraform applies offline.",
)
@click.option(
    "--ci-install",
    metavar="SPEC",
    help="[ci] install: how CI jobs install refarch (a wheel URL or repo-relative path, git+URL@commit).",
)
@click.option("--ci-install-sha256", metavar="SHA256", help="[ci] install_sha256: the wheel's SHA256.")
@click.option("--force", is_flag=True, help="Render into a non-empty folder, replacing files.")
def command(
    directory: str,
    org: str,
    accounts_text: str,
    regions: str,
    domain: str | None,
    modules_source: str | None,
    flavour: str,
    ci_install: str | None,
    ci_install_sha256: str | None,
    force: bool,
) -> None:
    """Render a complete infrastructure-live repo into DIRECTORY: root.hcl, common.hcl,
    _envcommon/, and one folder per account, region and unit."""
    request = NewRequest(
        directory,
        org=org,
        accounts=parse_accounts(accounts_text),
        regions=tuple(r.strip() for r in regions.split(",") if r.strip()),
        domain=domain,
        modules_source=modules_source,
        flavour=flavour,
        ci_install=ci_install,
        ci_install_sha256=ci_install_sha256,
        force=force,
    )
    result = new_repo(request)
    click.secho(f"rendered {result.units} units ({len(result.written)} files) into {directory}", bold=True)
    click.echo(f"next: refarch plan {directory}  /  refarch validate {directory}")
