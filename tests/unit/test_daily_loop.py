"""The daily loop through run() with a fake engine: plans past a failure, plans on mocks,
what waits for an apply (issue 19.2, 19.5's mock_outputs rule)."""

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from refarch.cli.run_cmd import run_header
from refarch.errors import DependencyNotApplied
from refarch.events import RunStarted
from refarch.models import Dependency, Status
from refarch.runner.ledger import read_events
from tests.unit.test_ledger import SPEC, FakeEngine, go
from tests.unit.test_scheduler import make_plan


class NoStateEngine(FakeEngine):
    """A fake engine whose units in `empty` have never been applied: no outputs."""

    def __init__(self, script=None, empty=()):
        super().__init__(script)
        self.empty = set(empty)

    def read_outputs(self, job):
        super().read_outputs(job)
        return {} if job.unit.path in self.empty else {"read": job.unit.path}


def with_blocks(plan, blocks):
    units = dict(plan.repo.units)
    for path, deps in blocks.items():
        units[path] = replace(units[path], dependency_blocks=tuple(deps))
    return replace(plan, repo=replace(plan.repo, units=units))


def test_plan_all_is_not_held_back_by_tiers_or_an_unrelated_failure(tmp_path):
    plan = make_plan(SPEC, root=tmp_path, action="plan")
    engine = FakeEngine({"security/iam": [(1, "Error: provider failed")], "dev/vpc": [(1, "Error: x")]})
    report = go(plan, engine)
    assert report.units["security/iam"].status == Status.FAILED
    # dev/db depends on dev/vpc, whose plan failed: a plan reads state, so it still plans
    planned = sorted(j.unit.path for j in engine.jobs)
    assert planned == ["dev/app", "dev/db", "dev/vpc", "security/iam"]
    assert report.units["dev/app"].status == Status.SUCCEEDED


def test_plan_uses_mocks_when_a_dependency_has_no_outputs_else_waits_for_its_apply(tmp_path):
    plan = with_blocks(
        make_plan(SPEC, root=tmp_path, action="plan"),
        {
            "dev/db": [Dependency("vpc", "dev/vpc", mock_outputs={"vpc_id": "mock"})],
            "dev/app": [Dependency("db", "dev/db")],
        },
    )
    engine = NoStateEngine(empty={"dev/vpc", "dev/db"})
    report = go(plan, engine)
    db = next(j for j in engine.jobs if j.unit.path == "dev/db")
    assert db.dependency_outputs == {"vpc": {"vpc_id": "mock"}}
    assert report.units["dev/db"].status == Status.SUCCEEDED
    assert report.units["dev/db"].message == "plan on mock outputs of dev/vpc"
    app = report.units["dev/app"]
    assert app.status == Status.NOT_RUN and app.blocked_by == "dev/db"
    assert app.message.startswith("waits for dev/db to be applied")
    assert "dev/app" not in [j.unit.path for j in engine.jobs]


def test_mock_outputs_without_allowed_commands_serve_every_command(tmp_path):
    # Terragrunt: no mock_outputs_allowed_terraform_commands means the mocks are allowed for
    # every command when the dependency has no outputs (apply here).
    blocks = {"dev/db": [Dependency("vpc", "dev/vpc", mock_outputs={"vpc_id": "mock"})]}
    plan = with_blocks(
        make_plan({"dev/vpc": ("dev", 1, []), "dev/db": ("dev", 1, ["dev/vpc"])}, root=tmp_path), blocks
    )
    engine = NoStateEngine(empty={"dev/vpc"})
    report = go(plan, engine)
    assert report.exit_code == 0
    db = next(j for j in engine.jobs if j.unit.path == "dev/db")
    assert db.dependency_outputs == {"vpc": {"vpc_id": "mock"}}
    # ... and only the listed commands when the list is set
    blocks = {
        "dev/db": [
            Dependency(
                "vpc",
                "dev/vpc",
                mock_outputs={"vpc_id": "mock"},
                mock_outputs_allowed_terraform_commands=("plan",),
            )
        ]
    }
    plan = with_blocks(plan, blocks)
    engine = NoStateEngine(empty={"dev/vpc"})
    go(plan, engine)
    db = next(j for j in engine.jobs if j.unit.path == "dev/db")
    assert db.dependency_outputs == {"vpc": {}}


def test_a_selected_unit_whose_outside_dependency_has_no_outputs_stops_the_run_first(tmp_path):
    spec = {"dev/vpc": ("dev", 1, []), "dev/db": ("dev", 1, ["dev/vpc"]), "dev/app": ("dev", 1, [])}
    full = with_blocks(make_plan(spec, root=tmp_path), {"dev/db": [Dependency("vpc", "dev/vpc")]})
    selection = replace(
        full, units={k: v for k, v in full.units.items() if k != "dev/vpc"}, tiers=(("dev/db", "dev/app"),)
    )
    engine = NoStateEngine(empty={"dev/vpc"})
    with pytest.raises(DependencyNotApplied) as caught:
        go(selection, engine)
    assert caught.value.needs == {"dev/vpc": ("dev/db",)}
    assert "--include dev/vpc" in caught.value.command and "--with-dependencies" in caught.value.command
    assert engine.jobs == []  # nothing started
    # applied before: its outputs are read (once) and handed over, it is not run
    engine = NoStateEngine()
    report = go(selection, engine)
    assert report.exit_code == 0 and sorted(j.unit.path for j in engine.jobs) == ["dev/app", "dev/db"]
    assert engine.reads == ["dev/vpc"]


def test_the_terraform_of_a_run_is_stated_in_the_header_ledger_and_report(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    terraform = bin_dir / "terraform"
    terraform.write_text('#!/bin/sh\necho \'{"terraform_version": "1.11.4"}\'\n')
    terraform.chmod(0o755)

    class TerragruntLike(FakeEngine):
        name = "terragrunt"

    engine, events = TerragruntLike(), []
    env = {"PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin"}
    report = go(make_plan(SPEC, root=tmp_path), engine, base_env=env, on_event=events.append)
    stated = {"path": str(terraform), "version": "1.11.4", "source": "PATH"}
    assert report.terraform == stated and report.to_json()["terraform"] == stated
    start = next(e for e in read_events(Path(report.ledger_path)) if e["event"] == "run_start")
    assert start["terraform"] == stated
    header = run_header(next(e for e in events if isinstance(e, RunStarted)))
    assert f"Terraform 1.11.4 ({terraform}, from PATH)" in header
    # terragrunt is handed the same Terraform
    assert all(job.env["TG_TF_PATH"] == str(terraform) for job in engine.jobs)


def test_config_show_states_the_terraform_the_runs_use(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from refarch.cli import cli

    (tmp_path / "refarch.toml").write_text('[engine]\nterraform_binary = "/opt/tf/terraform"\n')
    result = CliRunner().invoke(cli, ["config", "show", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    stated = json.loads(result.output)["terraform"]
    assert stated["path"] == "/opt/tf/terraform" and stated["source"] == "[engine] terraform_binary"
    monkeypatch.setenv("TG_TF_PATH", "/opt/other/terraform")  # the explicit setting still wins
    result = CliRunner().invoke(cli, ["config", "show", str(tmp_path)])
    assert "# Terraform the runs use: /opt/tf/terraform" in result.output


@pytest.mark.parametrize(
    "args",
    [["--include", ""], ["--include", "  "], ["--changed-since", ""], ["--changed-since", " "]],
)
def test_an_empty_or_blank_selector_is_a_usage_error(args, tmp_path):
    from click.testing import CliRunner

    from refarch.cli import cli

    for verb in ("plan", "plan-all"):
        result = CliRunner().invoke(cli, [verb, str(tmp_path), *args])
        assert result.exit_code == 2, result.output
        assert "empty" in result.output


def test_each_include_pattern_that_matches_nothing_is_warned_about(tmp_path):
    from refarch.planner import plan

    repo = make_plan(SPEC, root=tmp_path).repo
    result = plan(repo, include=["dev/vpc", "dev/nothere"], exclude=["dev/db", "dev/typo"])
    assert list(result.units) == ["dev/vpc"]
    assert result.warnings == ("--include dev/nothere matches no unit", "--exclude dev/typo matches no unit")


def test_terraforms_summary_line_gives_what_changed():
    from refarch.engines.base import resource_changes

    def counts(add, change, destroy):
        return {"add": add, "change": change, "destroy": destroy}

    colours = "\x1b[0m\x1b[1m\x1b[32m"
    applied = f"vpc: Creating...\n{colours}Apply complete! Resources: 2 added, 1 changed, 0 destroyed."
    assert resource_changes(applied) == counts(2, 1, 0)
    imported = "Apply complete! Resources: 1 imported, 0 added, 0 changed, 0 destroyed."
    assert resource_changes(imported) == counts(0, 0, 0)
    assert resource_changes("Destroy complete! Resources: 3 destroyed.") == counts(0, 0, 3)
    assert resource_changes("Plan: 1 to add, 0 to change, 2 to destroy.") == counts(1, 0, 2)
    assert resource_changes("No changes. Your infrastructure matches the configuration.") == counts(0, 0, 0)
    assert resource_changes("apply complete") is None


def test_the_report_and_ledger_tell_a_no_op_apply_from_a_change(tmp_path):
    from refarch.cli.run_cmd import changes_note
    from refarch.engines import EngineResult
    from refarch.exec.process import ProcessResult

    said = {
        "dev/vpc": "Apply complete! Resources: 0 added, 0 changed, 0 destroyed.",
        "dev/db": "Apply complete! Resources: 3 added, 0 changed, 1 destroyed.",
    }

    class Talking(FakeEngine):
        def execute(self, job):
            self.jobs.append(job)
            text = said.get(job.unit.path, "apply complete")
            return EngineResult(ProcessResult(("fake", job.action), "/", 0, text, "", 0.0), None)

    spec = {"dev/vpc": ("dev", 1, []), "dev/db": ("dev", 1, ["dev/vpc"]), "dev/app": ("dev", 1, [])}
    report = go(make_plan(spec, root=tmp_path), Talking())
    assert report.units["dev/vpc"].changes == {"add": 0, "change": 0, "destroy": 0}
    assert report.units["dev/db"].changes == {"add": 3, "change": 0, "destroy": 1}
    assert report.units["dev/app"].changes is None  # the tool did not say
    units = {u["path"]: u for u in report.to_json()["units"]}
    assert units["dev/db"]["changes"] == {"add": 3, "change": 0, "destroy": 1}
    finishes = {e["unit"]: e for e in read_events(Path(report.ledger_path)) if e["event"] == "unit_finish"}
    assert finishes["dev/vpc"]["changes"] == {"add": 0, "change": 0, "destroy": 0}
    assert "changes" not in finishes["dev/app"]
    assert changes_note(report.units["dev/vpc"].changes) == "no changes"
    assert changes_note(report.units["dev/db"].changes) == "+3 ~0 -1"


def test_the_preflight_hint_for_an_ami_uses_dir_and_shares_only_with_other_accounts(tmp_path):
    from refarch.jobs.preflight import Reference, _Checker
    from refarch.settings import Settings

    repo = make_plan(SPEC, root=tmp_path).repo
    checker = _Checker(repo, Settings(), sessions=None)

    def hint(account):
        return checker._remedy(Reference("u", "ami_id", "ami", "ami-0abc1234", account, None, "us-east-1"))

    assert hint("dev") == f"refarch amis build {tmp_path} --regions us-east-1 --share-with dev"
    # the account that builds the images owns them: nothing to share
    assert hint("shared-services") == f"refarch amis build {tmp_path} --regions us-east-1"


def test_apply_asks_for_consent_before_the_preflight(tmp_path, monkeypatch):
    import shutil as sh

    from click.testing import CliRunner

    from refarch.cli import cli, run_cmd
    from refarch.errors import NoCredentials, UsageError
    from refarch.jobs import deploy

    live = tmp_path / "live"
    sh.copytree(Path(__file__).parent.parent / "fixtures" / "live", live)
    order = []
    monkeypatch.setattr(run_cmd, "terminal_consent", lambda: lambda *a: order.append("consent") or True)

    def preflight(plan, settings):
        order.append("preflight")
        raise UsageError("stop here")

    monkeypatch.setattr(deploy, "preflight", preflight)
    result = CliRunner().invoke(cli, ["apply", str(live), "--include", "dev/*", "--no-stack-generate"])
    assert result.exit_code == 2 and order == ["consent", "preflight"], result.output
    # the no-credentials hint names no flag that apply lacks
    assert "--profile" not in (NoCredentials().hint or "")


def test_vpn_client_defaults_remote_to_the_openvpn_units_public_ip(tmp_path):
    from refarch.jobs.vpn import vpn_remote
    from refarch.models import RunReport
    from refarch.settings import Settings

    spec = {"mgmt/openvpn": ("shared-services", 1, []), "dev/vpc": ("dev", 2, [])}
    repo = make_plan(spec, root=tmp_path).repo
    asked = []

    def read(order):
        asked.append(list(order.units))
        return RunReport(
            "r", "output", "fake", 0, 0, {}, outputs={"mgmt/openvpn": {"public_ip": "203.0.113.7"}}
        )

    assert vpn_remote(repo, Settings(), read=read) == "203.0.113.7"
    assert asked == [["mgmt/openvpn"]]  # only that unit's outputs are read
    configured = Settings(sections={"vpn": {"remote": "vpn.example.com"}})
    assert vpn_remote(repo, configured, read=read) == "vpn.example.com" and len(asked) == 1
    assert (
        vpn_remote(make_plan({"dev/vpc": ("dev", 1, [])}, root=tmp_path).repo, Settings(), read=read) is None
    )


def test_bootstrap_dry_run_says_what_it_would_make_never_done_or_created(capsys):
    from refarch.cli import output
    from refarch.cli.bootstrap_cmd import render
    from refarch.provision import Result
    from refarch.provision.record import AccountRecord, BootstrapRecord

    results = [
        Result(
            "s3-bucket", "b", "created", "1", "us-east-1", changes=("create bucket b", "enable versioning")
        ),
        Result("dynamodb-table", "t", "created", "1", "us-east-1", changes=("create lock table t",)),
        Result("key-pair", "k", "exists", "1", "us-east-1"),
    ]
    account = AccountRecord("dev", "1", 2, status="done", results=results)
    record = BootstrapRecord(status="dry-run", dry_run=True, accounts={"dev": account}, ran=["dev"])
    render(output.Printer(output.Mode(plain=True)), record)
    shown = capsys.readouterr().out
    assert "would create" in shown and "dry run" in shown
    assert " done " not in shown and "| created" not in shown
    assert "would change 2 resource(s), 3 change(s):" in shown


def test_every_hint_names_flags_that_its_verb_has():
    """`refarch VERB [SUB] ... --flag` anywhere in refarch's messages: the flag exists on that
    verb (a hint once sent users to `refarch plan --resume`, which plan does not have)."""
    import re

    import click

    from refarch.cli import COMMANDS, load_command

    flag = re.compile(r"(?<![\w-])--[a-z][a-z-]*")
    checked, wrong = 0, []
    for file in sorted((Path(__file__).parents[2] / "refarch").rglob("*.py")):
        for found in re.finditer(r"refarch ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?([^`\"\n]*)", file.read_text()):
            verb, sub, rest = found.groups()
            if verb not in COMMANDS:
                continue
            command = load_command(verb)
            if isinstance(command, click.Group) and sub in command.commands:
                command = command.commands[sub]
            names = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
            checked += 1
            wrong += [f"{file.name}: {found.group(0)} ({f})" for f in flag.findall(rest) if f not in names]
    assert checked > 50 and not wrong, wrong


@pytest.mark.parametrize(
    ("verb", "absent"),
    [
        ("apply", ["--allow-broken-dependents"]),
        ("plan-all", ["--no-preflight", "--allow-broken-dependents", "--allow-unknown-account"]),
        ("destroy", ["--no-preflight", "--with-dependencies"]),
        ("output", ["--fail-fast", "--no-preflight", "--resume", "--allow-broken-dependents"]),
    ],
)
def test_each_run_verb_shows_only_the_options_it_uses(verb, absent):
    from click.testing import CliRunner

    from refarch.cli import cli

    shown = CliRunner().invoke(cli, [verb, "--help"]).output
    assert "--include" in shown and "--tf-path" in shown
    assert [option for option in absent if option in shown] == []


def _every_command():
    import click

    from refarch.cli import COMMANDS, load_command

    def walk(command, name):
        if isinstance(command, click.Group):
            for sub, child in sorted(command.commands.items()):
                yield from walk(child, f"{name} {sub}")
        else:
            yield name, command

    for verb in sorted(COMMANDS):
        yield from walk(load_command(verb), verb)


def test_every_commands_help_follows_the_cli_rules():
    """TG_* variables are listed in --help; the verbs that talk to AWS take --profile and
    --endpoint-url, those that run Terraform --tf-path (19.7)."""
    from click.testing import CliRunner

    from refarch.cli import cli

    aws = {"apply", "plan-all", "destroy", "output", "stack run", "stack output", "dns import", "recover"}
    aws |= {"bootstrap", "config show", "preflight", "vpn client", "vpn revoke"}
    aws |= {"amis build", "amis prune", "history", "audit export"}
    terraform = {
        "apply",
        "plan-all",
        "destroy",
        "output",
        "stack run",
        "stack output",
        "dns import",
        "recover",
    }
    seen = set()
    for name, command in _every_command():
        seen.add(name)
        names = {o for p in command.params for o in p.opts}
        shown = " ".join(CliRunner().invoke(cli, [*name.split(), "--help"]).output.split())
        for param in command.params:
            if isinstance(param, click_option_type()) and param.envvar and not param.hidden:
                assert f"env var: {param.envvar}" in shown, (name, param.envvar)
        if name in aws:
            assert {"--profile", "--endpoint-url"} <= names, name
        if name in terraform:
            assert "--tf-path" in names, name
    assert aws | terraform <= seen


def click_option_type():
    import click

    return click.Option


@pytest.mark.parametrize(
    "argv",
    [
        ["amis", "prune", "{live}", "--keep", "2", "--dry-run"],
        ["history", "{live}"],
        ["audit", "export", "{live}", "--out", "{live}/audit.jsonl"],
    ],
)
def test_the_profile_given_is_the_one_the_aws_session_uses(tmp_path, monkeypatch, argv):
    """--profile reaches the boto3 session (19.7): an unknown profile is named, not ignored.
    history and audit export talk to AWS only for the shared ledger (DynamoDB)."""
    from click.testing import CliRunner

    from refarch.cli import cli
    from refarch.render import render_live_repo

    live = tmp_path / "live"
    accounts = {"security": "111111111111", "shared-services": "222222222222", "dev": "444444444444"}
    render_live_repo(live, org="acme", accounts=accounts, regions=["us-east-1"], flavour="demo")
    with (live / "refarch.toml").open("a") as handle:
        handle.write('\n[ledger]\nbackend = "dynamodb"\n')
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.setenv(name, str(tmp_path / "no-such-file"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    args = [a.format(live=live) for a in argv]
    result = CliRunner().invoke(cli, [*args, "--profile", "nosuch", "--endpoint-url", "http://127.0.0.1:9"])
    assert result.exit_code != 0 and "profile (nosuch)" in result.output, result.output
