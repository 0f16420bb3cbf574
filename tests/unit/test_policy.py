"""Policy checks on plan JSON fixtures (tests/fixtures/plans): the built-in rules as data,
rules added in refarch.toml, waivers; and apply --plan-dir refusing a unit with a deny finding
unless waived, the waiver's reason in the ledger. Drift's `differences` on the same fixtures."""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from refarch import policy
from refarch.engines import EngineResult
from refarch.engines.plan_file import PlanChanges
from refarch.errors import ConfigError
from refarch.exec.process import ProcessResult
from refarch.jobs.drift import DriftReport, differences, plan_settings, read_only_env, verdict
from refarch.models import Status, Unit
from refarch.runner.ledger import find_ledger, read_events
from refarch.runner.run import RunOptions, run
from refarch.runner.saved_plans import markdown, run_summary, summary_path
from refarch.settings import Settings, settings_from_dict
from tests.unit.test_contracts import check as check_schema
from tests.unit.test_ledger import FakeCredentials, go
from tests.unit.test_scheduler import make_plan

PLANS = Path(__file__).resolve().parents[1] / "fixtures" / "plans"


def plan_json(name: str) -> dict:
    return json.loads((PLANS / f"{name}.json").read_text())


def findings(name: str, settings: Settings | None = None) -> set[tuple[str, str]]:
    rules = policy.rules_for(settings or Settings())
    return {(f.rule, f.address) for f in policy.check(plan_json(name), rules)}


def test_the_built_in_rules_find_each_kind_of_insecure_resource() -> None:
    assert findings("insecure") == {
        ("s3-public-bucket", "aws_s3_bucket_acl.open"),
        ("unencrypted-storage", "aws_s3_bucket.open"),  # no encryption resource refers to it
        ("unencrypted-storage", "aws_ebs_volume.data"),  # `encrypted` not set: known after apply
        ("sg-admin-port-open", "aws_security_group.ssh"),
        ("iam-star-on-star", "aws_iam_policy.admin"),
    }  # aws_s3_bucket.gone is destroyed: its public ACL is no finding


def test_secure_shapes_give_no_finding() -> None:
    # an SSE resource in a module refers to the bucket, SSH only from 10/8, the VPN port open,
    # "*" resources with named actions, a data source's "*" policy
    assert findings("secure") == set()


def test_refarch_toml_adds_rules_and_can_drop_the_built_in_ones() -> None:
    own = {
        "rules": [
            {
                "id": "vpn-open",
                "effect": "warn",
                "types": ["aws_security_group"],
                "each": "ingress",
                "conditions": [
                    {"path": "cidr_blocks", "test": "contains", "value": "0.0.0.0/0"},
                    {"path": ".", "test": "ports_include", "value": [1194]},
                ],
            }
        ]
    }
    settings = settings_from_dict({"policy": own})
    assert findings("secure", settings) == {("vpn-open", "aws_security_group.vpn")}
    only_own = settings_from_dict({"policy": {**own, "builtin": False}})
    assert findings("insecure", only_own) == set()


def test_a_bad_rule_names_the_file_key_and_line(tmp_path: Path) -> None:
    from refarch.settings import load_settings

    (tmp_path / "refarch.toml").write_text(
        '[[policy.rules]]\nid = "x"\ntypes = ["aws_s3_bucket"]\n'
        'conditions = [{ path = "acl", test = "is-public" }]\n'
    )
    with pytest.raises(ConfigError, match=r"refarch.toml:4: policy.rules\[0\].conditions\[0\].test"):
        load_settings(tmp_path, env={})


def test_a_waiver_names_a_rule_and_unit_globs_and_needs_a_reason() -> None:
    found = policy.check(plan_json("insecure"), policy.builtin_rules())
    waivers = settings_from_dict(
        {
            "policy": {
                "waivers": [{"rule": "iam-star-on-star", "reason": "break-glass role", "units": ["dev/*"]}]
            }
        }
    ).policy.waivers
    verdict_dev = policy.judge("dev/iam", found, waivers)
    assert [(f.rule, reason) for f, reason in verdict_dev.waived] == [
        ("iam-star-on-star", "break-glass role")
    ]
    assert len(verdict_dev.denied) == 4 and verdict_dev.refused
    rows = verdict_dev.rows()  # as the run report lists them
    assert [(r["rule"], r["verdict"], r.get("reason")) for r in rows if r["verdict"] == "waived"] == [
        ("iam-star-on-star", "waived", "break-glass role")
    ]
    assert sorted(r["verdict"] for r in rows) == ["denied"] * 4 + ["waived"]
    assert len(policy.judge("prod/iam", found, waivers).denied) == 5
    assert "[[policy.waivers]]" in verdict_dev.message()
    with pytest.raises(ConfigError, match="reason"):
        settings_from_dict({"policy": {"waivers": [{"rule": "x", "reason": " "}]}})


def test_the_markdown_summary_lists_the_findings_deny_first() -> None:
    plan = make_plan({"dev/bad": ("dev", 1, []), "dev/good": ("dev", 1, [])}, action="plan")
    report = go_report(plan)
    bad = [f.to_json() for f in policy.check(plan_json("insecure"), policy.builtin_rules())]
    units = {
        "dev/bad": {"has_changes": True, "add": 5, "change": 0, "destroy": 1, "outputs": 0, "policy": bad},
        "dev/good": {"has_changes": False, "add": 0, "change": 0, "destroy": 0, "outputs": 0, "policy": []},
    }
    text = markdown(run_summary(report, units, refarch_version="x"))
    assert "**Policy: 5 finding(s), 5 deny**" in text
    assert "| `dev/bad` | `iam-star-on-star` | deny | `aws_iam_policy.admin` |" in text


def go_report(plan):
    from tests.unit.test_ledger import FakeEngine

    return go(plan, FakeEngine(), history=False)


class PlanningEngine:
    """plan -out: writes a plan file and hands the insecure plan's document; apply: succeeds."""

    name = "fake"
    resolves_dependencies = False

    def __init__(self) -> None:
        self.applied: list[str] = []
        self.plan_files: list[Path | None] = []
        self._lock = threading.Lock()

    def execute(self, job):
        ok = ProcessResult(("fake", job.action), "/", 0, "", "", 0.0)
        if job.action == "plan":
            Path(job.plan_file).write_bytes(b"plan")
            return EngineResult(ok, None, plan=PlanChanges(add=5), document=plan_json("insecure"))
        with self._lock:
            self.applied.append(job.unit.path)
            self.plan_files.append(job.plan_file)
        return EngineResult(ok, {})

    def read_outputs(self, job):
        return {}

    def state_files(self, job):
        return []


def go_saved(plan, engine, **options):
    return run(
        plan,
        plan.action,
        engine=engine,
        credentials=FakeCredentials(),
        sleep=lambda _s: None,
        base_env={"PATH": "/usr/bin"},
        options=RunOptions(history=False, **options),
    )


def test_apply_from_saved_plans_refuses_a_denied_unit_unless_waived_and_records_why(tmp_path: Path) -> None:
    spec = {"dev/bad": ("dev", 1, [])}
    plans = tmp_path / "plans"
    engine = PlanningEngine()
    planned = go_saved(make_plan(spec, action="plan", root=tmp_path), engine, out_dir=plans)
    assert planned.ok
    saved = json.loads(summary_path(plans, "dev/bad").read_text())
    assert {f["rule"] for f in saved["policy"]} == {
        "s3-public-bucket",
        "unencrypted-storage",
        "sg-admin-port-open",
        "iam-star-on-star",
    }
    assert "**Policy: 5 finding(s), 5 deny**" in (plans / "summary.md").read_text()

    refused = go_saved(make_plan(spec, root=tmp_path), engine, plan_dir=plans)
    unit = refused.units["dev/bad"]
    assert unit.status == Status.FAILED and "apply refused" in unit.message and engine.applied == []
    events = read_events(find_ledger(tmp_path, refused.run_id))
    (denied,) = [e for e in events if e["event"] == "policy_denied"]
    assert len(denied["findings"]) == 5

    rules = ("s3-public-bucket", "unencrypted-storage", "sg-admin-port-open", "iam-star-on-star")
    settings = settings_from_dict(
        {"policy": {"waivers": [{"rule": r, "reason": f"sandbox account ({r})"} for r in rules]}}
    )
    plan = make_plan(spec, root=tmp_path)
    plan = replace(plan, repo=replace(plan.repo, settings=settings))
    waived = go_saved(plan, engine, plan_dir=plans)
    assert waived.ok and engine.applied == ["dev/bad"]
    events = read_events(find_ledger(tmp_path, waived.run_id))
    reasons = {e["rule"]: e["reason"] for e in events if e["event"] == "policy_waived"}
    assert reasons["iam-star-on-star"] == "sandbox account (iam-star-on-star)" and len(reasons) == 4
    for event in events:
        check_schema("ledger-event", event)


def test_a_plain_apply_under_check_apply_plans_checks_and_applies_exactly_that_plan(tmp_path: Path) -> None:
    spec = {"dev/bad": ("dev", 1, [])}
    engine = PlanningEngine()

    def plan_with(policy_table: dict) -> object:
        plan = make_plan(spec, root=tmp_path)
        settings = settings_from_dict({"policy": {"check_apply": True, **policy_table}})
        return replace(plan, repo=replace(plan.repo, settings=settings))

    refused = go_saved(plan_with({}), engine)
    assert refused.units["dev/bad"].status == Status.FAILED and engine.applied == []
    assert "policy: 5 deny finding(s) in the plan: apply refused" in refused.units["dev/bad"].message
    rules = ("s3-public-bucket", "unencrypted-storage", "sg-admin-port-open", "iam-star-on-star")
    waived = go_saved(plan_with({"waivers": [{"rule": r, "reason": "sandbox"} for r in rules]}), engine)
    assert waived.ok and engine.applied == ["dev/bad"]
    (applied_plan,) = engine.plan_files
    assert applied_plan is not None and applied_plan.parent == tmp_path / ".refarch" / "checked"
    assert not applied_plan.exists()  # every planned value is in it: removed after the apply
    plain = go_saved(make_plan(spec, root=tmp_path), engine)  # check_apply off: applied as it is
    assert plain.ok and engine.plan_files[-1] is None


def test_differences_tell_infrastructure_drift_from_code_drift() -> None:
    found = differences(plan_json("secure"))
    kinds = {r["address"]: (r["kind"], r["actions"], r["attributes"]) for r in found["resources"]}
    assert kinds["aws_security_group.vpn"] == ("infrastructure", ("update",), ("tags",))
    assert kinds["aws_s3_bucket_public_access_block.logs"][0] == "code"
    assert "module.logs.aws_s3_bucket.this[0]" not in kinds  # no-op
    assert found["outputs"] == ["bucket"]
    unit = Unit(path="dev/vpn", account="dev", account_id=None, region=None)
    assert verdict(unit, True, "", {"drift": found}).kinds == ("infrastructure", "code")
    assert verdict(unit, True, "", {"drift": {"resources": [], "outputs": []}}).status == "in_sync"
    assert verdict(unit, False, "exit code 1\nError: boom", None).status == "failed"
    assert verdict(unit, True, "", {}).status == "failed"  # no document saved: cannot tell
    bad = [f.to_json() for f in policy.check(plan_json("insecure"), policy.builtin_rules())]
    units = (verdict(unit, True, "", {"drift": found, "policy": bad}), verdict(unit, False, "boom", None))
    report = DriftReport("r2", "r1", 0.0, units, Path("drift"))
    assert report.exit_code == 2 and report.count("failed") == 1
    check_schema("drift", report.to_json())
    text = report.markdown()
    assert "| `dev/vpn` | dev | infrastructure | `aws_security_group.vpn` | update | tags |" in text
    assert "| `dev/vpn` | dev | code | outputs | update | bucket |" in text
    in_sync = DriftReport("r", "p", 0.0, (verdict(unit, True, "", {"drift": {}}),), Path("d"))
    assert in_sync.exit_code == 0
    assert DriftReport("r", "p", 0.0, units[1:], Path("d")).exit_code == 1


def test_drift_plans_read_only_under_the_plan_role() -> None:
    settings = settings_from_dict({"ci": {"plan_role_name": "ReadOnlyPlan"}})
    assert plan_settings(settings).role_arn_for("dev", "444444444444").endswith(":role/ReadOnlyPlan")
    assert plan_settings(Settings()) == Settings()
    assert read_only_env({"TF_CLI_ARGS_plan": "-parallelism=2"})["TF_CLI_ARGS_plan"] == (
        "-parallelism=2 -lock=false"
    )


CHECKOV_REPORT = {
    "check_type": "terraform_plan",
    "results": {
        "passed_checks": [{"check_id": "CKV_AWS_3", "check_name": "EBS volume encrypted", "resource": "x"}],
        "failed_checks": [
            {
                "check_id": "CKV_AWS_20",
                "check_name": "S3 Bucket has an ACL defined which allows public READ access.",
                "resource": "aws_s3_bucket_acl.open",
            },
            {
                "check_id": "CKV_AWS_24",
                "check_name": "Ensure no security groups allow ingress from 0.0.0.0:0 to port 22",
                "resource": "aws_security_group.ssh",
            },
        ],
    },
}


def test_checkov_failed_checks_warn_unless_listed_to_deny() -> None:
    from refarch.runner.checkov import parse

    found = parse(json.dumps([CHECKOV_REPORT]), deny=("CKV_AWS_24",))
    assert [(f.rule, f.effect, f.address, f.source) for f in found] == [
        ("CKV_AWS_20", "warn", "aws_s3_bucket_acl.open", "checkov"),
        ("CKV_AWS_24", "deny", "aws_security_group.ssh", "checkov"),
    ]
    assert parse(json.dumps(CHECKOV_REPORT)) == parse(json.dumps([CHECKOV_REPORT]))
    assert parse("not json") == []


@pytest.mark.skipif(shutil.which("checkov") is None, reason="Checkov is not installed (the policy extra)")
def test_checkov_reads_the_same_plan_json(tmp_path: Path) -> None:
    import os

    from refarch.runner.checkov import checkov_findings

    settings = settings_from_dict({"policy": {"checkov": True, "checkov_deny": ["CKV_AWS_24"]}})
    found = checkov_findings(tmp_path, "dev/bad", plan_json("insecure"), settings.policy, dict(os.environ))
    assert ("CKV_AWS_24", "deny") in {
        (f.rule, f.effect) for f in found if f.address == "aws_security_group.ssh"
    }
    assert list((tmp_path / ".refarch" / "checkov").iterdir()) == []  # the plan JSON is not left behind


def test_drift_history_says_when_a_unit_last_drifted_and_came_back_in_sync(tmp_path: Path) -> None:
    from refarch.runner.history import drift_history
    from refarch.runner.ledger import Ledger, LocalLedgerStore, runs_dir

    verdicts = [("in_sync", []), ("drifted", ["code"]), ("drifted", ["infrastructure"]), ("in_sync", [])]
    for number, (status, kinds) in enumerate(verdicts, start=1):
        with Ledger(
            runs_dir(tmp_path) / f"2026120{number}T000000000Z-abc.jsonl", clock=lambda n=number: n
        ) as led:
            led.write("drift", unit="dev/vpc", account="dev", status=status, kinds=kinds, plan_run="p")
    (row,) = drift_history(LocalLedgerStore(tmp_path))
    assert (row.status, row.checked, row.last_drifted, row.drift_kinds, row.back_in_sync) == (
        "in_sync",
        4.0,
        3.0,
        ("infrastructure",),
        4.0,
    )
    assert row.drift_run == "20261203T000000000Z-abc"
    (same,) = drift_history(LocalLedgerStore(tmp_path), unit="dev/vpc")
    assert same == row and drift_history(LocalLedgerStore(tmp_path), unit="prod/vpc") == []
