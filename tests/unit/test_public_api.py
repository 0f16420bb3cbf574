"""The public API: what `import refarch` offers, and the layering rules of DESIGN.md."""

import ast
import pathlib

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
    for name in ("load_repo", "plan", "run", "evaluate_unit", "build_amis"):
        assert callable(getattr(refarch, name)), name


def test_the_verbs_are_plain_functions_and_importing_modules_does_not_hide_them():
    import inspect

    import refarch.exec.process as process  # noqa: PLR0402 - this import form is the test
    import refarch.jobs.bootstrap
    import refarch.jobs.deploy
    import refarch.planner

    assert callable(process.run_process)
    for name in ("load_repo", "plan", "run", "bootstrap", "build_amis", "demo", "evaluate_unit"):
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


def test_every_command_has_help_text():
    from click.testing import CliRunner

    from refarch.cli import cli

    def walk(group, prefix):
        for name, command in group.commands.items():
            yield [*prefix, name], command
            if hasattr(command, "commands"):
                yield from walk(command, [*prefix, name])

    for argv, command in walk(cli, []):
        assert (command.help or "").strip(), f"refarch {' '.join(argv)} has no help text"
        result = CliRunner().invoke(cli, [*argv, "--help"])
        assert result.exit_code == 0, argv


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
