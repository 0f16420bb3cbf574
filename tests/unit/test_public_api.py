"""The public API: what `import refarch` offers, and the layering rules of DESIGN.md."""

import ast
import pathlib
import re
from typing import Any

import refarch

PACKAGE = pathlib.Path(refarch.__file__).parent

# Each outside library has one owner (STYLE.md habit 1).
OWNERS = {
    "hcl2": {"config/hcl.py"},
    "lark": {"config/hcl.py"},
    "networkx": {"graph.py"},
    "jinja2": {"render.py"},
    "click": {"cli/"},
    "subprocess": {"exec/process.py", "exec/guard.py"},  # guard.py: the watchdog script process.py runs
    "opentelemetry": {"telemetry.py"},
}


def imports_of(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_everything_in_all_exists_and_the_verbs_are_callable():
    for name in refarch.__all__:
        assert hasattr(refarch, name), name
    for name in ("load_repo", "plan", "run", "deploy", "evaluate_unit", "build_amis"):
        assert callable(getattr(refarch, name)), name


def test_the_verbs_are_plain_functions_and_importing_modules_does_not_hide_them():
    import inspect

    import refarch.exec.process as process  # noqa: PLR0402 - this import form is the test
    import refarch.jobs.bootstrap
    import refarch.jobs.deploy
    import refarch.planner

    assert callable(process.run_process)
    for name in ("load_repo", "plan", "run", "deploy", "bootstrap", "build_amis", "demo", "evaluate_unit"):
        assert inspect.isfunction(getattr(refarch, name)), name
    repo = refarch.load_repo(PACKAGE.parent / "tests/fixtures/live", cache=False)
    assert refarch.plan(repo).groups[0] == ("security/us-east-1/iam",)


def test_the_wheel_ships_py_typed():
    assert (PACKAGE / "py.typed").is_file()


def test_import_refarch_loads_no_heavy_library():
    import subprocess
    import sys

    code = (
        "import sys, refarch; "
        "print(sorted(m for m in ('boto3', 'botocore', 'networkx', 'jinja2', 'rich', 'lark', 'click') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_each_outside_library_has_one_owner():
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        for module in imports_of(path):
            top = module.split(".")[0]
            if top in OWNERS:
                owners = OWNERS[top]
                assert any(rel == o or rel.startswith(o) for o in owners), f"{rel} imports {top}"


def test_nothing_imports_the_cli_and_only_the_cli_prints_or_exits():
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("cli/") or rel == "exec/guard.py":  # guard.py is a script, run by process.py
            continue
        assert not any(m.startswith("refarch.cli") for m in imports_of(path)), rel
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in ("print", "exit"), f"{rel} calls {node.func.id}()"
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                assert (node.value.id, node.attr) != ("sys", "exit"), f"{rel} calls sys.exit"


def test_graph_and_plan_touch_neither_aws_nor_processes():
    for rel in ("graph.py", "planner.py", "models.py", "settings.py", "events.py"):
        mods = set(imports_of(PACKAGE / rel))
        assert not {m for m in mods if m.split(".")[0] in ("boto3", "botocore", "subprocess")}
        assert "refarch.aws" not in mods and "refarch.exec.process" not in mods


def walk_commands(group, prefix=()):
    """Every command below `group` (loading the lazy ones), with its argv."""
    import click

    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield [*prefix, name], command
        if isinstance(command, click.Group):
            yield from walk_commands(command, [*prefix, name])


def test_every_command_has_help_text():
    from click.testing import CliRunner

    from refarch.cli import cli

    listed = CliRunner().invoke(cli, ["--help"]).output
    walked = list(walk_commands(cli))
    assert len(walked) > 20
    for argv, command in walked:
        assert (command.help or "").strip(), f"refarch {' '.join(argv)} has no help text"
        result = CliRunner().invoke(cli, [*argv, "--help"])
        assert result.exit_code == 0, argv
        if len(argv) == 1:
            assert f"\n  {argv[0]} " in listed, f"refarch --help does not list {argv[0]}"


def test_the_command_table_matches_each_commands_own_help():
    """`refarch --help` lists COMMANDS' summaries without importing the verbs: each must be
    the start of its command's real help, and every verb module must be in the table."""
    import importlib
    import re

    from refarch.cli import COMMANDS, load_command

    def words(text):
        return " ".join(text.split())

    for name, (module, summary) in COMMANDS.items():
        command = load_command(name)
        assert command.name == name
        assert words(command.help or "").startswith(words(summary)), (
            f"COMMANDS[{name!r}]'s summary is not the start of the help of refarch.cli.{module}"
        )
    for path in sorted((PACKAGE / "cli").glob("*_cmd.py")):
        module = importlib.import_module(f"refarch.cli.{path.stem}")
        for command in getattr(module, "commands", [module.command]):
            assert COMMANDS.get(command.name, ("",))[0] == path.stem, (
                f"refarch.cli.{path.stem} defines {command.name!r}: add it to COMMANDS in cli/__init__.py"
            )
    assert all(re.fullmatch(r"[a-z][a-z-]*", name) for name in COMMANDS)


def test_refarch_help_imports_no_heavy_library():
    """The verbs load lazily: `refarch --help` (and `import refarch.cli`) costs click and
    refarch.errors, not boto3, networkx, jinja2, rich or lark."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from refarch.cli import main\n"
        "sys.argv = ['refarch', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = ('boto3', 'botocore', 'networkx', 'jinja2', 'rich', 'lark', 'hcl2', 'moto', 'yaml')\n"
        "print('loaded:', sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Commands:" in out.stdout and "graph" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "loaded: []"


def test_refarch_graph_on_a_cached_repo_imports_no_heavy_library(tmp_path):
    """A warm `refarch graph` reads the discovery cache: no networkx, HCL parser, rich or boto3."""
    import shutil
    import subprocess
    import sys

    live = tmp_path / "live"
    shutil.copytree(PACKAGE.parent / "tests/fixtures/live", live, ignore=shutil.ignore_patterns(".refarch"))
    code = (
        "import sys\n"
        "from refarch.cli import main\n"
        f"sys.argv = ['refarch', 'graph', {str(live)!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = ('boto3', 'botocore', 'networkx', 'jinja2', 'rich', 'lark', 'hcl2', 'moto')\n"
        "print('loaded:', sorted(m for m in heavy if m in sys.modules))\n"
    )
    for _ in range(2):  # the first run fills .refarch/cache
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert '"units"' in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "loaded: []"


def test_only_aws_py_makes_sessions_others_may_only_catch_botocore_errors():
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel == "aws.py":
            continue
        for module in imports_of(path):
            assert module.split(".")[0] != "boto3", f"{rel} imports boto3"
            if module.startswith("botocore"):
                assert module == "botocore.exceptions", f"{rel} imports {module}"


USER_SCRIPT = """
from pathlib import Path

import refarch


def deploy(live: Path) -> int:
    repo: refarch.Repo = refarch.load_repo(live)
    order: refarch.Plan = refarch.plan(repo, "apply", include=["dev/*"])
    record: refarch.BootstrapRecord = refarch.bootstrap(repo, repo.settings, dry_run=True)
    amis: refarch.AmiRecord = refarch.build_amis(repo, repo.settings, templates=["bastion"])
    options = refarch.RunOptions(parallelism=2, fail_fast=True)

    def show(event: refarch.RunEvent) -> None:
        if isinstance(event, refarch.UnitFinished) and event.status is refarch.Status.FAILED:
            print(event.unit, event.message)

    report: refarch.RunReport = refarch.run(order, refarch.Action.APPLY, options=options, on_event=show)
    print(len(record.accounts), amis, report.counts)
    return report.exit_code


def verbs(live: Path) -> int:
    def note(event: refarch.DeployEvent) -> None:
        print(event)

    planned: refarch.DeployResult = refarch.deploy(refarch.DeployRequest(live, "plan"), on_event=note)
    ci: refarch.CiResult = refarch.emit_ci(refarch.CiRequest("gitlab", live, write=False))
    found: refarch.PreflightReport = refarch.run_preflight(refarch.PreflightRequest(live))
    graph: refarch.GraphResult = refarch.repo_graph(refarch.GraphRequest(live))
    pushed: refarch.RecoverResult = refarch.run_recover(refarch.RecoverRequest(live))
    print(sorted(ci.files), graph.to_json(), found.ok)
    return max(planned.exit_code, found.exit_code, pushed.exit_code)
"""


def test_a_user_script_passes_mypy_strict(tmp_path):
    """The public API is typed all the way through: no 'Module not callable', no Any leaks."""
    import subprocess
    import sys

    script = tmp_path / "deploy.py"
    script.write_text(USER_SCRIPT)
    result = subprocess.run(
        # the project's own mypy cache: refarch is checked once, by make test's mypy
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(PACKAGE.parent / ".mypy_cache"),
            str(script),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_error_boundary_still_catches_aws_errors_without_importing_boto3_up_front():
    """botocore loads lazily now: an AWS error the library did not wrap is still one line and
    exit 1, and any other exception still propagates."""
    import botocore.exceptions
    import click
    from click.testing import CliRunner

    from refarch.cli import cli

    def denied():
        error = {"Error": {"Code": "AccessDenied", "Message": "no"}}
        raise botocore.exceptions.ClientError(error, "GetObject")

    def broken():
        raise ValueError("a bug")

    cli.add_command(click.Command("test-denied", callback=denied))
    cli.add_command(click.Command("test-broken", callback=broken))
    try:
        result = CliRunner().invoke(cli, ["test-denied"])
        bug = CliRunner().invoke(cli, ["test-broken"])
    finally:
        cli.commands.pop("test-denied")
        cli.commands.pop("test-broken")
    assert result.exit_code == 1 and "error: AWS: " in result.output and "AccessDenied" in result.output
    assert isinstance(bug.exception, ValueError)


# Every verb of the CLI -> the public job it calls (issue 20.1: one job per verb).
VERB_JOBS = {
    "amis build": "run_amis_build",
    "amis prune": "run_amis_prune",
    "apply": "deploy",
    "artifacts build": "run_artifacts_build",
    "audit export": "audit_export",
    "bootstrap": "run_bootstrap",
    "ci": "emit_ci",
    "config show": "show_config",
    "demo": "run_demo",
    "destroy": "deploy",
    "drift": "drift",
    "dns import": "run_dns_import",
    "graph": "repo_graph",
    "history": "run_history",
    "new": "new_repo",
    "output": "deploy",
    "plan": "plan_repo",
    "plan-all": "deploy",
    "preflight": "run_preflight",
    "recover": "run_recover",
    "stack clean": "stack_clean",
    "stack generate": "stack_generate",
    "stack output": "stack_output",
    "stack run": "deploy",
    "validate": "validate_live",
    "vpn client": "run_vpn_client",
    "vpn revoke": "run_vpn_revoke",
}


def _verbs() -> dict[str, Any]:
    """Every leaf command of the CLI by its full name ("amis build"), with its callback."""
    import click

    from refarch.cli import COMMANDS, load_command

    verbs: dict[str, Any] = {}
    for name in COMMANDS:
        command = load_command(name)
        subcommands = command.commands if isinstance(command, click.Group) else {"": command}
        for sub, leaf in subcommands.items():
            verbs[f"{name} {sub}".strip()] = leaf.callback
    return verbs


def test_every_verb_is_one_public_job_taking_a_typed_request_and_its_command_calls_it():
    import inspect
    import typing

    verbs = _verbs()
    assert set(verbs) == set(VERB_JOBS), "a verb without a job (or a job for a verb that is gone)"
    for verb, job_name in VERB_JOBS.items():
        job = getattr(refarch, job_name)
        assert job_name in refarch.__all__ and inspect.isfunction(job), verb
        assert job.__module__.startswith("refarch.jobs."), (verb, job.__module__)
        first, *others = inspect.signature(job).parameters.values()
        hints = typing.get_type_hints(job)
        assert hints[first.name].__name__.endswith("Request"), (verb, hints[first.name])
        assert all(p.kind is p.KEYWORD_ONLY for p in others), (verb, "callbacks are keyword-only")
        assert hints["return"] is not type(None), verb
        source = inspect.getsource(inspect.getmodule(verbs[verb]))  # type: ignore[arg-type]
        assert re.search(rf"\b{job_name}\b", source), (verb, "its command does not call its job")
