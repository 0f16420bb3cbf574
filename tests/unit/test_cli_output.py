"""CI output: plain lines with the unit and account in front, tables that never wrap, GitHub
groups and annotations (refarch/cli/output.py and the views that use it)."""

import time

from click.testing import CliRunner

from refarch.cli import cli, output
from refarch.cli.run_cmd import RunView
from refarch.events import UnitFinished, UnitOutput, UnitRetried, UnitStarted
from refarch.models import RunReport, Status, UnitReport

LONG = "x" * 300


def test_ci_or_no_terminal_means_plain_and_github_actions_is_detected():
    assert output.detect({"CI": "true"}, tty=True).plain
    assert output.detect({}, tty=False).plain
    assert output.detect({}, tty=True).rich
    assert output.detect({"CI": "false"}, tty=True).rich
    assert output.detect({"CI": "1", "GITHUB_ACTIONS": "true"}, tty=True).github
    assert not output.detect({"CI": "1"}, tty=True).github


def test_a_plain_table_never_wraps_and_keeps_its_columns_aligned():
    table = output.Table(("unit", "status", "time"), title="run", right=("time",))
    table.add_row("dev/us-east-1/app", "[green]succeeded[/]", "1.0s")
    table.add_row(f"prod/{LONG}", "failed", "12.5s")
    lines = table.plain_lines()
    assert lines[0] == "run"
    assert lines[1].split() == ["unit", "status", "time"]
    assert len(lines) == 4  # title, header, one line per row: nothing wrapped
    assert lines[3].startswith(f"prod/{LONG}  failed")
    assert lines[2].index("succeeded") == lines[3].index("failed")
    assert lines[2].endswith(" 1.0s") and lines[3].endswith("12.5s")
    assert "[green]" not in "\n".join(lines)


def test_markdown_table_for_a_job_summary_escapes_pipes():
    table = output.Table(("unit", "note"), title="refarch plan")
    table.add_row("dev/app", "a | b")
    text = table.markdown()
    assert "### refarch plan" in text
    assert "| dev/app | a \\| b |" in text


def events(unit="dev/us-east-1/app"):
    yield UnitStarted(unit, "dev", "runs/x.log")
    yield UnitOutput(unit, "stdout", "Apply complete! " + LONG)
    yield UnitRetried(unit, attempt=1, attempts=3, rule="throttling", delay=2.0, remedy=None)
    yield UnitFinished(unit, Status.SUCCEEDED, "", attempts=2, duration=1.5, log="runs/x.log")


def run_view(mode, capsys):
    view = RunView("apply", 1, mode, accounts={"dev/us-east-1/app": "dev"})
    with view:
        assert view.progress is None  # no spinner, no live view
        for event in events():
            view.on_event(event)
    return capsys.readouterr().out.splitlines()


def test_in_ci_every_event_is_one_line_with_the_unit_and_account_in_front(capsys):
    lines = run_view(output.Mode(plain=True), capsys)
    assert lines == [
        "[dev/us-east-1/app] (dev) ==> apply",
        f"[dev/us-east-1/app] Apply complete! {LONG}",
        "[dev/us-east-1/app] (dev) <-> retry after attempt 1 of 3 (throttling), in 2.0s",
        "[dev/us-east-1/app] (dev) <== succeeded (1.5s)",
    ]


def test_on_github_actions_a_units_output_is_folded_into_a_group(capsys):
    lines = run_view(output.Mode(plain=True, github=True), capsys)
    assert lines == [
        "[dev/us-east-1/app] (dev) ==> apply",
        "[dev/us-east-1/app] (dev) <-> retry after attempt 1 of 3 (throttling), in 2.0s",
        "::group::dev/us-east-1/app (dev): succeeded",
        f"[dev/us-east-1/app] Apply complete! {LONG}",
        "::endgroup::",
        "[dev/us-east-1/app] (dev) <== succeeded (1.5s)",
    ]


def report():
    now = time.time()
    long_path = f"dev/us-east-1/{LONG}"
    return RunReport(
        run_id="20260101T000000Z-abc",
        action="plan",
        engine="terraform",
        started=now - 3,
        finished=now,
        units={long_path: UnitReport(long_path, "dev", Status.FAILED, 1, 2.0, message="boom | bang")},
        counts={"failed": 1},
        ledger_path="runs/ledger.jsonl",
    )


def test_the_summary_table_is_one_line_per_unit_and_goes_to_the_github_job_summary(
    tmp_path, capsys, monkeypatch
):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    RunView("plan", 1, output.Mode(plain=True, github=True)).summary(report(), "live")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "refarch plan: run 20260101T000000Z-abc"
    row = next(line for line in lines if LONG in line)
    assert row.split()[1:4] == ["dev", "failed", "1"]
    assert "resume with: refarch plan-all live --resume 20260101T000000Z-abc" in lines
    markdown = summary.read_text()
    assert "| unit | account | status | attempts | time | note |" in markdown
    assert "boom \\| bang" in markdown


def test_github_annotation_points_at_the_file_and_line_of_a_configuration_error(tmp_path):
    live = tmp_path / "repo" / "live"
    (live / "dev" / "app").mkdir(parents=True)
    (live / "root.hcl").write_text("")
    (live / "dev" / "app" / "terragrunt.hcl").write_text('inputs = {\n  a = "b"\n  c = \n}\n')
    env = {"CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(tmp_path / "repo")}
    result = CliRunner().invoke(cli, ["plan", str(live), "--no-cache"], env=env)
    assert result.exit_code == 2, result.output
    annotation = next(line for line in result.output.splitlines() if line.startswith("::error "))
    assert annotation.startswith("::error file=live/dev/app/terragrunt.hcl,line=")
    assert "title=refarch::" in annotation
    assert "%0A" in annotation or "\n" not in annotation


def test_no_annotation_outside_github_actions(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "terragrunt.hcl").write_text("inputs = {\n")
    result = CliRunner().invoke(cli, ["plan", str(tmp_path), "--no-cache"], env={"CI": "true"})
    assert result.exit_code == 2
    assert "::error" not in result.output


def test_annotation_escapes_its_properties_and_message():
    text = output.error_annotation("50% done\nnext", path="a,b:c.hcl", line=3, workspace="/")
    assert text == "::error file=a%2Cb%3Ac.hcl,line=3,title=refarch::50%25 done%0Anext"


def test_a_failed_or_lost_account_lock_is_a_line_on_screen(capsys):
    from refarch.events import AccountLockTrouble

    view = RunView("apply", 2, output.Mode(plain=True))
    with view:
        view.on_event(AccountLockTrouble("dev", "could not renew it: timeout", lost=False))
        view.on_event(AccountLockTrouble("dev", "run r-2 (host ci-7) holds it now", lost=True, unit="dev/db"))
    assert capsys.readouterr().out.splitlines() == [
        "could not renew the lock on account dev: could not renew it: timeout",
        "lost the lock on account dev: run r-2 (host ci-7) holds it now; dev/db and every unit after it "
        "not started",
    ]
