"""`refarch vpn client|revoke` as a library, and the VPN server's address for a client profile:
`[vpn] remote`, else the openvpn unit's `public_ip` output (read with `terraform output`, as
`refarch output` does)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from refarch.aws import AwsSessions
from refarch.models import Plan, Repo, RunReport
from refarch.planner import plan
from refarch.provision.vpn_pki import UNIT_FOLDER, ClientProfile, Revocation, issue_client, revoke_client
from refarch.repo import load_repo
from refarch.runner.run import RunOptions, run
from refarch.settings import Settings, load_settings

OUTPUT = "public_ip"


def vpn_remote(
    repo: Repo, settings: Settings, *, read: Callable[[Plan], RunReport] | None = None
) -> str | None:
    """The address client profiles name: `[vpn] remote`, else the `public_ip` output of the
    repo's openvpn unit (None when there is neither, or the unit has no such output yet).
    `read` runs the `output` plan of that unit (default: `refarch.runner.run.run`)."""
    if settings.vpn.remote:
        return settings.vpn.remote
    units = sorted(p for p in repo.units if p.rsplit("/", 1)[-1] == UNIT_FOLDER)
    if not units:
        return None
    order = plan(repo, "output", include=[units[0]])
    if read is None:

        def read(order: Plan) -> RunReport:
            return run(order, "output", settings, options=RunOptions(history=False))

    value = read(order).outputs.get(units[0], {}).get(OUTPUT)
    return str(value) if value else None


@dataclass(frozen=True)
class VpnClientRequest:
    """What `refarch vpn client DIR NAME` is asked, one field per flag."""

    directory: str | Path
    name: str
    out: Path | None = None  # where the profile goes (default: ./NAME.ovpn)
    remote: str | None = None  # the server address (default: vpn_remote)
    endpoint_url: str | None = None
    profile: str | None = None


@dataclass(frozen=True)
class VpnRevokeRequest:
    """What `refarch vpn revoke DIR NAME` is asked, one field per flag."""

    directory: str | Path
    name: str
    endpoint_url: str | None = None
    profile: str | None = None


def _repo(directory: str | Path, endpoint_url: str | None, profile: str | None) -> tuple[Repo, Settings]:
    settings = load_settings(Path(directory)).with_overrides(endpoint_url=endpoint_url, profile=profile)
    return load_repo(directory, settings=settings), settings


def run_vpn_client(request: VpnClientRequest, *, sessions: AwsSessions | None = None) -> ClientProfile:
    """What `refarch vpn client DIR NAME` does: a client certificate signed by the repo's VPN
    CA and its .ovpn profile written (0600), naming `request.remote` or `vpn_remote`."""
    repo, settings = _repo(request.directory, request.endpoint_url, request.profile)
    remote = request.remote or vpn_remote(repo, settings)
    return issue_client(repo, settings, request.name, request.out, remote=remote, sessions=sessions)


def run_vpn_revoke(request: VpnRevokeRequest, *, sessions: AwsSessions | None = None) -> Revocation:
    """What `refarch vpn revoke DIR NAME` does: NAME's certificates revoked into the CRL."""
    repo, settings = _repo(request.directory, request.endpoint_url, request.profile)
    return revoke_client(repo, settings, request.name, sessions=sessions)
