"""The library equals the CLI for the AWS-facing verbs: bootstrap, preflight, vpn client|revoke,
dns import, artifacts build, amis build|prune and recover, each run through `refarch VERB` and
through its job (`refarch.run_*`) on one rendered repo against the moto server, give the same
records, findings and ledger events, and the same exit codes.

A verb that changes AWS or the repo runs its two ways on twin copies of the repo (a moto reset
in between where a second run would only find the first one's work); a read-only one runs both
ways on the same copy. Packer is the real one (one template, one region); the terragrunt
stand-in pushes the state back for recover. About 40-60 s on 2 shared cores.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import refarch
from refarch.cli import cli
from refarch.render import render_live_repo
from refarch.runner.ledger import Ledger, runs_dir
from tests.conftest import ACCOUNTS, MotoServer

pytestmark = pytest.mark.integration

RENDERED = {name: ACCOUNTS[name] for name in ("security", "shared-services", "dev")}
STAND_INS = Path(__file__).resolve().parents[1] / "stand_ins"
PACKER_DIR = Path(__file__).resolve().parents[2] / "packer"
SETTINGS = """
[vpn]
account = "shared-services"
remote = "vpn.acme.example"

[dns]
unit = "shared-services/us-east-1/vpc"
domains = ["acme.example"]

[amis]
packer_dir = "{packer_dir}"
"""
BOOTSTRAPPED = ("security", "shared-services")
ONLY = ("kms", "keypairs", "vpn")


@pytest.fixture
def twins(tmp_path: Path, moto_server: MotoServer) -> tuple[Path, Path]:
    """Two identical copies of a rendered repo (both folders named `live`: the same identity)."""
    first = tmp_path / "a" / "live"
    render_live_repo(first, org="acme", accounts=RENDERED, regions=["us-east-1"], flavour="demo")
    with (first / "refarch.toml").open("a", encoding="utf-8") as toml:
        toml.write(SETTINGS.format(packer_dir=PACKER_DIR))
    second = tmp_path / "b" / "live"
    shutil.copytree(first, second)
    return first, second


def invoke(*argv: Any) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in argv], env={"CI": "true"})


def same_text(value: Any, *roots: Path) -> Any:
    """`value` as JSON text with each repo root replaced by LIVE (the twins differ only there)."""
    text = json.dumps(value, sort_keys=True)
    for root in roots:
        text = text.replace(str(root), "LIVE")
    return json.loads(text)


def outcome(record: dict[str, Any]) -> dict[str, Any]:
    """A bootstrap record without times, ids of what was made and secrets' versions."""
    return {
        "status": record["status"],
        "ran": record["ran"],
        "accounts": {
            name: sorted((r["kind"], r["name"], r["status"], r["region"]) for r in account["results"])
            for name, account in record["accounts"].items()
        },
    }


def test_bootstrap_preflight_vpn_and_dns_are_the_same_both_ways(
    twins: tuple[Path, Path], tmp_path: Path, moto_server: MotoServer
) -> None:
    first, second = twins
    endpoint = ("--endpoint-url", moto_server.endpoint_url)
    report = tmp_path / "bootstrap-cli.json", tmp_path / "bootstrap-library.json"
    flags = ("--accounts", ",".join(BOOTSTRAPPED), "--only", ",".join(ONLY), "--report", report[0])
    shown = invoke("bootstrap", first, *endpoint, *flags)
    assert shown.exit_code == 0, shown.output
    moto_server.reset()  # the library's run starts from the same empty accounts
    request = refarch.BootstrapRequest(
        second, BOOTSTRAPPED, only=ONLY, endpoint_url=moto_server.endpoint_url, report=report[1]
    )
    events: list[refarch.BootstrapEvent] = []
    record = refarch.run_bootstrap(request, on_event=events.append)
    by_cli, by_library = (json.loads(p.read_text(encoding="utf-8")) for p in report)
    assert outcome(by_cli) == outcome(by_library) == outcome(record.to_json())
    assert record.status == "done"
    assert {e.account for e in events if e.kind == "account-done"} == set(BOOTSTRAPPED)
    assert json.loads((second / ".refarch" / "bootstrap.json").read_text())["status"] == "done"

    # preflight reads only: both ways on the same repo, the same findings and exit code (2:
    # the demo's AMIs were never built, so they are missing)
    shown = invoke("preflight", first, *endpoint, "--json")
    findings = refarch.run_preflight(refarch.PreflightRequest(first, endpoint_url=moto_server.endpoint_url))
    assert json.loads(shown.stdout) == findings.to_json()
    assert shown.exit_code == findings.exit_code == 2 and findings.missing and findings.having("found")
    narrowed = refarch.run_preflight(
        refarch.PreflightRequest(first, include=("dev/*",), endpoint_url=moto_server.endpoint_url)
    )
    shown = invoke("preflight", first, *endpoint, "--json", "--include", "dev/*")
    assert json.loads(shown.stdout) == narrowed.to_json() and set(narrowed.units) < set(findings.units)

    # vpn: a client each way, then each revoked; the same server, CA and CRL
    out = tmp_path / "alice.ovpn", tmp_path / "bob.ovpn"
    shown = invoke("vpn", "client", first, "alice", "--out", out[0], *endpoint)
    assert shown.exit_code == 0, shown.output
    issued = refarch.run_vpn_client(
        refarch.VpnClientRequest(first, "bob", out=out[1], endpoint_url=moto_server.endpoint_url)
    )
    assert shown.output.startswith(f"wrote {out[0]} (client alice, serial ")
    assert shown.output.rstrip().endswith(f"server {issued.remote})") and issued.remote == "vpn.acme.example"
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in out)
    profiles = [p.read_text().split("<cert>")[0] for p in out]
    assert profiles[0] == profiles[1]  # remote, CA, options: everything before the client's own
    shown = invoke("vpn", "revoke", first, "alice", *endpoint)
    revoked = refarch.run_vpn_revoke(refarch.VpnRevokeRequest(first, "bob", moto_server.endpoint_url))
    assert shown.exit_code == 0 and revoked.serials == (issued.serial,)
    assert shown.output.rstrip().endswith(f"CRL updated in {revoked.crl_secret}")

    # dns import: the zone unit's domain has no zone yet: nothing to import, said the same way
    shown = invoke("dns", "import", first, *endpoint)
    imported = refarch.run_dns_import(refarch.DnsImportRequest(first, endpoint_url=moto_server.endpoint_url))
    assert shown.exit_code == 0 and shown.output.splitlines() == imported.lines
    assert [(i.unit, i.status) for i in imported.imports] == [("shared-services/us-east-1/vpc", "absent")]


def test_artifacts_build_is_the_same_both_ways(
    twins: tuple[Path, Path], moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = twins
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)
    shown = invoke("artifacts", "build", first, "hello")
    assert shown.exit_code == 0, shown.output
    moto_server.reset()  # the upload again finds an empty bucket
    events: list[refarch.ArtifactEvent] = []
    report = refarch.run_artifacts_build(
        refarch.ArtifactsBuildRequest(second, ("hello",)), on_event=events.append
    )
    assert report.exit_code == 0 and [(r.kind, r.name, r.status) for r in report.results] == [
        ("lambda", "hello", "built")
    ]
    built = report.results[0]
    assert f"lambda hello: built {built.reference}" in shown.output
    assert (first / "artifacts.auto.hcl").read_text() == (second / "artifacts.auto.hcl").read_text()
    assert any(e.message.startswith("uploaded") for e in events)
    # a failed build is exit 1 both ways
    (first / "functions" / "hello" / "build.py").write_text("raise SystemExit(3)\n")
    (second / "functions" / "hello" / "build.py").write_text("raise SystemExit(3)\n")
    shown = invoke("artifacts", "build", first, "hello")
    failed = refarch.run_artifacts_build(refarch.ArtifactsBuildRequest(second, ("hello",)))
    assert shown.exit_code == failed.exit_code == 1 and failed.results[0].status == "failed"


@pytest.mark.skipif(shutil.which("packer") is None, reason="packer is not installed")
def test_amis_build_and_prune_are_the_same_both_ways(
    twins: tuple[Path, Path], moto_server: MotoServer
) -> None:
    first, _ = twins
    endpoint = ("--endpoint-url", moto_server.endpoint_url)
    where = ("--regions", "us-east-1", "--share-with", "dev")
    shown = invoke("amis", "build", first, "bastion", *where, *endpoint, "-q")
    assert shown.exit_code == 0, shown.output
    by_cli = json.loads((first / ".refarch" / "amis.json").read_text())["amis"]["bastion"]["us-east-1"]
    request = refarch.AmisBuildRequest(
        first,
        ("bastion",),
        regions=("us-east-1",),
        share_with=("dev",),
        endpoint_url=moto_server.endpoint_url,
    )
    record = refarch.run_amis_build(request)
    (build,) = record.builds
    assert by_cli["ami_id"] in shown.output and build.ami_id != by_cli["ami_id"]
    shape = {k: v for k, v in build.to_json().items() if k not in ("ami_id", "build_id", "built_at")}
    assert shape == {k: v for k, v in by_cli.items() if k not in ("ami_id", "build_id", "built_at")}
    assert build.shared_with == (ACCOUNTS["dev"],) and record.ami("bastion", "us-east-1") == build.ami_id

    # prune --dry-run: the older image (the CLI's, no longer recorded) would go, either way
    shown = invoke("amis", "prune", first, "--keep", "1", "--dry-run", *endpoint)
    retention = refarch.run_amis_prune(
        refarch.AmisPruneRequest(first, keep=1, endpoint_url=moto_server.endpoint_url, dry_run=True)
    )
    assert [i.ami_id for i in retention.removed] == [by_cli["ami_id"]]
    assert f"would remove bastion/us-east-1 {by_cli['ami_id']}" in shown.output
    assert "retention (keep 1): 1 image(s) would remove" in shown.output


def test_recover_is_the_same_both_ways(
    twins: tuple[Path, Path], tmp_path: Path, moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = twins
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "terragrunt").symlink_to(STAND_INS / "terragrunt")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("STANDIN_TG_RECORD", str(tmp_path / "calls.jsonl"))
    unit = "dev/us-east-1/vpc"
    runs = ("20261201T000000Z-aaaaaa", "20261201T000001Z-bbbbbb")
    for run in runs:  # two past applies, each kept a state Terraform could not save
        kept = root / ".refarch" / "recovery" / run / "vpc" / "errored.tfstate"
        kept.parent.mkdir(parents=True)
        kept.write_text('{"version": 4, "serial": 3, "resources": []}\n')
        with Ledger(runs_dir(root) / f"{run}.jsonl") as ledger:
            ledger.write("run_start", run_id=run, action="apply", units=[unit])
            ledger.write("state_rescued", unit=unit, files=[str(kept)])
    endpoint = ("--endpoint-url", moto_server.endpoint_url)
    shown = invoke("recover", root, "--run", runs[0], "--unit", unit, *endpoint)
    assert shown.exit_code == 0, shown.output
    request = refarch.RecoverRequest(root, runs[1], (unit,), endpoint_url=moto_server.endpoint_url)
    result = refarch.run_recover(request)
    assert result.exit_code == 0 and [(p.unit, p.ok, p.file.name) for p in result.pushed] == [
        (unit, True, "errored.tfstate.pushed")
    ]
    assert shown.output.strip() == f"{unit}: pushed {str(result.pushed[0].file).replace(runs[1], runs[0])}"
    pushes = [json.loads(line)["argv"] for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert [argv[1:3] for argv in pushes] == [["state", "push"]] * 2
    kinds = recover_ledger(root, runs[0])
    assert kinds == recover_ledger(root, runs[1]) and kinds[("state_pushed", unit)] == 1, kinds
    # nothing left to push: exit 0 and the same answer both ways
    again = invoke("recover", root, "--run", runs[0], *endpoint)
    assert again.exit_code == 0 and "nothing to push" in again.output
    assert refarch.run_recover(refarch.RecoverRequest(root, runs[1])).pushed == ()


def recover_ledger(root: Path, run: str) -> Counter[tuple[str, str | None]]:
    """The event kinds, by unit, of the recover run that pushed `run`'s state back."""
    for path in runs_dir(root).glob("*.jsonl"):
        events = [json.loads(line) for line in path.read_text().splitlines()]
        if events and events[0].get("action") == "recover" and events[0].get("recovers") == run:
            return Counter((e["event"], e.get("unit")) for e in events)
    raise AssertionError(f"no recover run of {run}")
