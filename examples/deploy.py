"""A platform team's deployment script on top of the refarch library.

    python examples/deploy.py LIVE_DIR                 # show the order, change nothing
    python examples/deploy.py LIVE_DIR --apply dev/*   # bootstrap, then apply dev and what it needs

Every stage returns plain data, so a script can stop, inspect and continue anywhere.
"""

from __future__ import annotations

import argparse
import sys

import refarch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("live_dir")
    parser.add_argument("--apply", metavar="GLOB", nargs="*", help="apply these units (all if none)")
    args = parser.parse_args(argv)

    try:
        repo = refarch.load_repo(args.live_dir)  # Repo: units, accounts, settings
        order = refarch.plan(repo, "apply", include=args.apply or (), with_dependencies=True)
    except refarch.RefarchError as exc:  # every error a user can cause: file, line, what to do
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code

    for account in repo.accounts:
        print(f"{account.name:<16} tier {account.tier}  {len(account.units)} unit(s)")
    for number, group in enumerate(order.groups, start=1):
        print(f"group {number}: {', '.join(group)}")
    if args.apply is None:
        return 0

    record = refarch.bootstrap(repo, repo.settings)  # state buckets, lock tables, keys, ...
    print(f"bootstrap: {len(record.accounts)} account(s) ready")
    # exactly what `refarch apply LIVE_DIR --include GLOB --with-dependencies --yes` does:
    # stacks generated, preflight, feature flags, the engine (--apply on this script is the consent)
    request = refarch.DeployRequest(
        args.live_dir, "apply", include=tuple(args.apply), with_dependencies=True, non_interactive=True
    )
    report = refarch.deploy(request, on_event=show_progress).report
    if report is None:
        return 0  # nothing selected
    print(f"{report.counts} (ledger: {report.ledger_path})")
    return 0 if report.ok else 1


def show_progress(event: refarch.DeployEvent) -> None:
    """Events are data; print the end of each unit (the CLI renders them with rich)."""
    if isinstance(event, refarch.UnitFinished):
        print(f"{event.unit}: {event.status} after {event.attempts} attempt(s)")


if __name__ == "__main__":
    sys.exit(main())
