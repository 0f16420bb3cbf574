"""Checkov over a saved plan's JSON (`[policy] checkov = true`; the `policy` extra installs it).

Checkov reads a `terraform show -json` document from a file: it is written 0600 into a 0700
folder under the repo's .refarch/ (its values can be secrets) and removed after the check.
Its failed checks become policy findings: `warn`, or `deny` for the check ids listed in
`[policy] checkov_deny`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from refarch.engines.workdir import unit_slug
from refarch.errors import ProcessFailed, ToolNotFound
from refarch.exec.process import capture
from refarch.files import local_dir, read_text, remove, write_atomic
from refarch.policy import Finding
from refarch.settings import PolicySettings

BINARY = "checkov"


def checkov_findings(
    root: Path, unit: str, document: Mapping[str, Any], policy: PolicySettings, env: Mapping[str, str]
) -> list[Finding]:
    """The failed Checkov checks of one plan document."""
    if shutil.which(BINARY, path=env.get("PATH")) is None:
        raise ToolNotFound(BINARY, hint="pip install 'refarch[policy]', or set [policy] checkov = false")
    folder = local_dir(root, "checkov")
    plan = folder / f"{unit_slug(unit)}.json"
    results = folder / "results_json.json"  # where Checkov writes `-o json --output-file-path`
    write_atomic(plan, json.dumps(document))
    try:
        argv = [BINARY, "-f", str(plan), "--framework", "terraform_plan", "--soft-fail", "--quiet"]
        argv.append("--skip-download")  # offline: never calls Prisma Cloud for guidelines
        done = capture([*argv, "-o", "json", "--output-file-path", str(folder)], cwd=folder, env=env)
        if not done.ok or not results.is_file():
            raise ProcessFailed(done.argv, done.cwd, done.returncode, done.output_tail[-2000:])
        text = read_text(results)
    finally:
        remove(plan)
        remove(results)
    return parse(text, policy.checkov_deny)


def parse(text: str, deny: tuple[str, ...] = ()) -> list[Finding]:
    """Findings from Checkov's `-o json` (one report, or a list of them)."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return []
    reports = document if isinstance(document, list) else [document]
    found = []
    for report in reports:
        results = report.get("results") if isinstance(report, Mapping) else None
        for check in (results or {}).get("failed_checks") or ():
            rule = str(check.get("check_id", ""))
            found.append(
                Finding(
                    rule,
                    "deny" if rule in deny else "warn",
                    str(check.get("resource", "")),
                    str(check.get("check_name", "")),
                    source="checkov",
                )
            )
    return sorted(found, key=lambda f: (f.address, f.rule))
