"""`refarch vpn client NAME DIR` / `refarch vpn revoke NAME DIR`: OpenVPN client certificates."""

from __future__ import annotations

from pathlib import Path

import click

from refarch.cli.queue_options import profile_option
from refarch.jobs.vpn import VpnClientRequest, VpnRevokeRequest, run_vpn_client, run_vpn_revoke


@click.group("vpn")
def command() -> None:
    """OpenVPN clients: issue a profile, revoke it (the PKI itself is made by `refarch bootstrap`)."""


def dir_first(first: str, second: str) -> tuple[str, str]:
    """(DIR, NAME) from `DIR NAME`, or from the older `NAME DIR` (with a warning)."""
    if Path(first).is_dir():
        return first, second
    if Path(second).is_dir():
        click.secho(
            f"warning: NAME DIR is the old order; use DIR NAME ({second} {first})", fg="yellow", err=True
        )
        return second, first
    raise click.BadParameter(f"{first} is not a folder: give the live repo first (DIR NAME)")


@command.command("client")
@click.argument("directory", metavar="DIR")
@click.argument("name", metavar="NAME")
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the profile (default: ./NAME.ovpn).",
)
@click.option(
    "--remote",
    help="Server address in the profile (default: [vpn] remote, else the openvpn unit's public_ip).",
)
@click.option("--endpoint-url", help="AWS endpoint (moto, LocalStack).")
@profile_option
def client(
    directory: str,
    name: str,
    out: Path | None,
    remote: str | None,
    endpoint_url: str | None,
    profile: str | None,
) -> None:
    """Issue a client certificate for NAME from DIR's VPN CA and write a ready .ovpn
    profile (mode 0600: it holds the client's private key, which refarch keeps nowhere else)."""
    directory, name = dir_first(directory, name)
    issued = run_vpn_client(
        VpnClientRequest(directory, name, out, remote, endpoint_url=endpoint_url, profile=profile)
    )
    click.echo(f"wrote {issued.path} (client {issued.name}, serial {issued.serial}, server {issued.remote})")


@command.command("revoke")
@click.argument("directory", metavar="DIR")
@click.argument("name", metavar="NAME")
@click.option("--endpoint-url", help="AWS endpoint (moto, LocalStack).")
@profile_option
def revoke(directory: str, name: str, endpoint_url: str | None, profile: str | None) -> None:
    """Revoke NAME's client certificate: its serial goes into the CRL the server reads."""
    directory, name = dir_first(directory, name)
    done = run_vpn_revoke(VpnRevokeRequest(directory, name, endpoint_url=endpoint_url, profile=profile))
    click.echo(f"revoked {done.name} (serial {', '.join(done.serials)}); CRL updated in {done.crl_secret}")
