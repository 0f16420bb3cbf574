"""The library equals the CLI for the repo verbs: ci, graph, plan, validate, config show, new,
stack (generate, clean, run, output), drift, history, audit export and demo, each run through
`refarch VERB` and through its job function on the same repo, comparing what they produce
(pipeline files, graph JSON, plan, findings, settings, rendered files, generated stacks,
drift report, ledger events). The run verbs use the terragrunt stand-in and STS on the moto
server, as test_deploy_parity does. Demo: the refusals before anything starts only (a full
demo is tests/e2e/test_demo.py). Cost: about 15 s on 2 shared cores.
"""

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

import refarch
from refarch.cli import cli
from refarch.errors import RefarchError
from tests.integration.test_deploy_parity import live  # noqa: F401 - the fixture: a live repo, stand-in, moto

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "live"
STACK = "dev/us-east-1/stack"
INSTALL = "git+https://example.com/acme/refarch.git@" + "a" * 40
STACK_FILE = """
unit "net" {
  source = "../../../../catalog/units/net"
  path   = "net"
}
"""


def invoke(*argv: str, code: int = 0) -> str:
    """`refarch ARGV` through click; its stdout (asserting the exit code)."""
    result = CliRunner().invoke(cli, [str(a) for a in argv])
    assert result.exit_code == code, result.output
    return result.stdout


def tree(root: Path) -> dict[str, str]:
    """Every file below `root` (relative path -> text)."""
    return {
        p.relative_to(root).as_posix(): p.read_text(encoding="utf-8", errors="replace")
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_the_read_only_verbs_and_new_are_the_same_through_the_cli_and_the_library(tmp_path):
    repo = tmp_path / "live"
    shutil.copytree(FIXTURE, repo, ignore=shutil.ignore_patterns(".refarch"))

    by_cli, by_lib = tmp_path / "ci-cli", tmp_path / "ci-lib"
    flags = ("--allow-local-ledger", "--install", INSTALL)
    invoke("ci", "github", repo, "--out", by_cli, *flags, "--include", "dev/*")
    request = refarch.CiRequest(
        "github", repo, out=by_lib, allow_local_ledger=True, install=INSTALL, include=("dev/*",)
    )
    result = refarch.emit_ci(request)
    assert tree(by_cli) == tree(by_lib) == dict(result.files) and result.files
    stdout = invoke("ci", "gitlab", repo, "--stdout", *flags)
    request = refarch.CiRequest("gitlab", repo, write=False, allow_local_ledger=True, install=INSTALL)
    files = refarch.emit_ci(request).files
    assert stdout == "".join(f"# ==> {name} <==\n{text}\n" for name, text in files.items())

    graph = refarch.repo_graph(refarch.GraphRequest(repo))
    assert json.loads(invoke("graph", repo)) == graph.to_json() == json.loads(graph.text)
    dot = refarch.repo_graph(refarch.GraphRequest(repo, format="dot", queue_include_external=False))
    assert invoke("graph", repo, "--format", "dot", "--queue-exclude-external") == dot.text

    shown = invoke("plan", repo, "--json", "--action", "destroy", "--include", "dev/*")
    planned = refarch.plan_repo(refarch.PlanRequest(repo, "destroy", include=("dev/*",))).plan
    assert planned is not None and json.loads(shown) == planned.to_json()

    validated = refarch.validate_live(refarch.ValidateRequest(repo))
    shown = invoke("validate", repo, "--json", code=validated.exit_code)
    assert json.loads(shown) == validated.report.to_json()

    config = refarch.show_config(refarch.ConfigRequest(repo, region="eu-west-1"))
    assert json.loads(invoke("config", "show", repo, "--json", "--region", "eu-west-1")) == config.to_json()

    accounts = {"security": "111111111111", "shared-services": "222222222222", "dev": "444444444444"}
    argv = ("--org", "acme", "--accounts", ",".join(f"{k}={v}" for k, v in accounts.items()))
    invoke("new", tmp_path / "new-cli", *argv, "--regions", "us-east-1", "--flavour", "demo")
    made = refarch.new_repo(
        refarch.NewRequest(tmp_path / "new-lib", "acme", accounts, ("us-east-1",), flavour="demo")
    )
    assert tree(tmp_path / "new-cli") == tree(tmp_path / "new-lib") and made.units > 0


def with_stack(root: Path) -> Path:
    """A stack of one unit (a catalog copy of the vpc unit) in dev/us-east-1."""
    catalog = root.parent / "catalog" / "units" / "net"
    catalog.mkdir(parents=True)
    shutil.copy(root / "dev/us-east-1/vpc/terragrunt.hcl", catalog / "terragrunt.hcl")
    (root / STACK).mkdir()
    (root / STACK / "terragrunt.stack.hcl").write_text(STACK_FILE)
    return root / STACK


def test_the_stack_verbs_are_the_same_through_the_cli_and_the_library(live, tmp_path):  # noqa: F811
    folder = with_stack(live)
    invoke("stack", "generate", folder)
    generated = tree(folder / ".terragrunt-stack")
    cleaned = refarch.stack_clean(refarch.StackRequest(folder))
    assert cleaned.deleted == (folder / ".terragrunt-stack",) and not (folder / ".terragrunt-stack").exists()
    result = refarch.stack_generate(refarch.StackRequest(folder))
    assert tree(folder / ".terragrunt-stack") == generated and [s.units for s in result.stacks]

    script = {"default": {"outputs": {"vpc_id": "vpc-1234"}}}
    Path(os.environ["STANDIN_TG_SCRIPT"]).write_text(json.dumps(script))
    shown = invoke("stack", "output", folder, "--format", "json", "--non-interactive")
    request = refarch.DeployRequest(folder, "output", non_interactive=True)
    outputs = refarch.stack_output(refarch.StackOutputRequest(request))
    assert json.loads(shown) == outputs.selected() == {"net": {"vpc_id": "vpc-1234"}}
    keyed = refarch.stack_output(refarch.StackOutputRequest(request, key="net.vpc_id"))
    assert invoke("stack", "output", folder, "net.vpc_id", "--format", "raw", "-y") == "vpc-1234\n"
    assert keyed.selected() == {"net.vpc_id": "vpc-1234"} and keyed.exit_code == 0

    report = tmp_path / "stack-run.json"
    invoke("stack", "run", "plan", folder, "--non-interactive", "--report", report)
    planned = refarch.deploy(refarch.DeployRequest(folder, "plan", non_interactive=True)).report
    assert planned is not None
    assert {u["path"]: u["status"] for u in json.loads(report.read_text())["units"]} == {
        p: str(u.status) for p, u in planned.units.items()
    }


DRIFTED = {
    "address": "aws_vpc.this",
    "type": "aws_vpc",
    "mode": "managed",
    "change": {"actions": ["update"], "before": {"cidr": "a"}, "after": {"cidr": "b"}},
}


def verdicts(document):
    """A drift report without its ids and times."""
    return document["counts"], document["exit_code"], document["units"]


def events(path):
    """The ledger's event kinds by unit."""
    return Counter((e["event"], e.get("unit")) for e in map(json.loads, Path(path).read_text().splitlines()))


def test_drift_history_and_audit_are_the_same_through_the_cli_and_the_library(live, tmp_path):  # noqa: F811
    script = {"units": {"dev/us-east-1/vpc": {"resource_changes": [DRIFTED]}}}
    Path(os.environ["STANDIN_TG_SCRIPT"]).write_text(json.dumps(script))
    flags = ("--include", "dev/us-east-1/*", "--engine", "terragrunt")
    report = tmp_path / "drift-cli.json"
    invoke("drift", live, *flags, "--out-dir", tmp_path / "cli", "--report", report, code=2)
    by_cli = json.loads(report.read_text())
    request = refarch.DriftRequest(
        live, include=("dev/us-east-1/*",), engine="terragrunt", out_dir=tmp_path / "lib"
    )
    by_lib = refarch.drift(request)
    assert verdicts(by_cli) == verdicts(by_lib.to_json()) and by_lib.exit_code == 2
    assert by_lib.count("drifted") == 1 and len(by_lib.units) == 3
    ledgers = sorted((live / ".refarch" / "runs").rglob("*.jsonl"))
    drift_runs = [p for p in ledgers if '"action": "drift"' in p.read_text()]
    assert len(drift_runs) == 2 and events(drift_runs[0]) == events(drift_runs[1])

    shown = [json.loads(line) for line in invoke("history", live, "--json").splitlines()]
    runs = refarch.run_history(refarch.HistoryRequest(live))
    assert shown == [row.to_json() for row in runs.runs] and shown
    shown = [json.loads(line) for line in invoke("history", live, "--drift", "--json").splitlines()]
    drift = refarch.run_history(refarch.HistoryRequest(live, drift=True)).drift
    assert shown == [row.to_json() for row in drift] and shown

    invoke("audit", "export", live, "--out", tmp_path / "audit-cli.jsonl", "--since", "1d")
    request = refarch.AuditExportRequest(live, tmp_path / "audit-lib.jsonl", since="1d")
    exported = refarch.audit_export(request)
    assert (tmp_path / "audit-cli.jsonl").read_text() == exported.out.read_text() and exported.count


def test_the_demo_refuses_the_same_through_the_cli_and_the_library(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no packer: refused before anything starts
    with pytest.raises(RefarchError) as raised:
        refarch.run_demo(refarch.DemoRequest(tmp_path / "demo"))
    result = CliRunner().invoke(cli, ["demo", str(tmp_path / "demo")])
    assert result.exit_code == raised.value.exit_code and str(raised.value).splitlines()[0] in result.output
    assert not (tmp_path / "demo").exists()
    with pytest.raises(RefarchError, match="--keep is for the twins"):
        refarch.run_demo(refarch.DemoRequest(modules="real", keep=True))
    refused = CliRunner().invoke(cli, ["demo", "--modules", "real", "--keep"])
    assert refused.exit_code == 2 and "--keep is for the twins" in refused.output
