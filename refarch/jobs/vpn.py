"""The VPN server's address for a client profile: `[vpn] remote`, else the openvpn unit's
`public_ip` output (read with `terraform output`, as `refarch output` does)."""

from __future__ import annotations

from collections.abc import Callable

from refarch.models import Plan, Repo, RunReport
from refarch.planner import plan
from refarch.provision.vpn_pki import UNIT_FOLDER
from refarch.runner.run import RunOptions, run
from refarch.settings import Settings

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
