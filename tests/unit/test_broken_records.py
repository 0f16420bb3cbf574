"""Broken or planted local records get a clear answer through the CLI (exit 2 or a warning),
never a traceback; and `.refarch/` is used only when it is this user's alone."""

from __future__ import annotations

import json
import marshal
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from refarch.cli import cli
from refarch.config.cache import CACHE_FILE
from refarch.repo import load_repo
from tests.helpers import write_tree

REPO = {
    "root.hcl": "",
    "dev/account.hcl": 'locals {\n  account_name = "dev"\n  aws_account_id = "444444444444"\n}\n',
    "dev/us-east-1/region.hcl": 'locals {\n  aws_region = "us-east-1"\n}\n',
    "dev/us-east-1/app/terragrunt.hcl": (
        'include "root" {\n  path = find_in_parent_folders("root.hcl")\n}\n'
        'terraform {\n  source = "../../../modules/app"\n}\n'
        'inputs = {\n  name = "app"\n}\n'
    ),
    "modules/app/variables.tf": 'variable "name" {\n  type = string\n}\n',
}


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "live", REPO)


# -- item 4: local state is trusted only if it is ours ------------------------------------------
def test_a_world_writable_refarch_folder_is_refused_with_the_fix(repo: Path) -> None:
    assert invoke("plan", str(repo)).exit_code == 0
    os.chmod(repo / ".refarch", 0o777)  # noqa: S103 - the refusal under test
    result = invoke("plan", str(repo))
    assert result.exit_code == 2
    assert "writable by group or others" in result.output
    assert f"chmod go-w {repo / '.refarch'}" in result.output


def test_a_planted_symlink_in_refarch_is_refused_and_not_followed(repo: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (repo / ".refarch").mkdir(mode=0o700)
    (repo / ".refarch" / "cache").symlink_to(elsewhere)
    result = invoke("plan", str(repo))
    assert result.exit_code == 2 and "is a symbolic link" in result.output
    assert list(elsewhere.iterdir()) == []


def test_a_planted_cache_cannot_inject_a_hook_or_change_an_account_id(repo: Path) -> None:
    assert invoke("plan", str(repo), "--json").exit_code == 0
    cache = repo / ".refarch" / "cache" / CACHE_FILE
    signed = cache.read_bytes()
    # someone rewrites the cache: same layout, a hook and another account id, no valid MAC
    payload = signed[signed.index(b"\n") + 1 + 32 :]
    data = marshal.loads(payload)  # noqa: S302 - reading our own test file
    unit = data["units"]["dev/us-east-1/app"]["unit"]
    unit["account_id"] = "999999999999"
    unit["terraform"] = {"before_hook": {"x": {"commands": ["apply"], "execute": ["sh", "-c", "evil"]}}}
    for forged in (marshal.dumps(data), signed[: signed.index(b"\n") + 1] + b"\0" * 32 + marshal.dumps(data)):
        cache.write_bytes(forged)
        result = invoke("plan", str(repo), "--json")
        assert result.exit_code == 0
        assert "warning:" in result.stderr and "verification failed" in result.stderr
        loaded = load_repo(repo).unit("dev/us-east-1/app")  # the CLI rebuilt the cache
        assert loaded.account_id == "444444444444" and "before_hook" not in loaded.terraform
    assert b"999999999999" not in cache.read_bytes()


def test_a_malformed_cache_is_discarded_with_a_notice(repo: Path) -> None:
    assert invoke("plan", str(repo)).exit_code == 0
    (repo / ".refarch" / "cache" / CACHE_FILE).write_bytes(b"\x00garbage")
    result = invoke("plan", str(repo))
    assert result.exit_code == 0 and "unit cache is discarded" in result.stderr


# -- item 5: broken records ---------------------------------------------------------------------
def test_broken_ledger_lines_are_skipped_with_a_warning_naming_file_and_line(repo: Path) -> None:
    runs = repo / ".refarch" / "runs"
    runs.mkdir(parents=True, mode=0o700)
    (repo / ".refarch").chmod(0o700)
    ledger = runs / "20260101T000000Z-000000.jsonl"
    ledger.write_bytes(
        b'{"event": "unit_start", "unit": "dev/us-east-1/app"}\n'
        b"\xff\xfe not utf-8\n"
        b'["a list"]\n'
        b'{"event": "run_start", "run_id": "r", "action": "plan", "units": 5}\n'
        b'{"event": "unit_fin'
    )
    result = invoke("plan-all", str(repo), "--resume", "last", "--engine", "terraform", "--non-interactive")
    assert result.exit_code == 2
    for line, why in ((2, "not UTF-8"), (3, "not an event"), (4, "`units`"), (5, "torn")):
        assert f"warning: {ledger}:{line}: ledger line skipped: " in result.stderr
        assert why in result.stderr
    assert "no earlier plan run to resume" in result.output  # a ledger without run_start is none


@pytest.mark.parametrize(
    "content",
    [
        "[]",
        '{"version": 1, "status": "done", "accounts": []}',
        '{"version": 1, "status": "done", "accounts": {"dev": 5}}',
        '{"version": 1, "accounts": {}}',
        "\udcff",
    ],
)
def test_a_bootstrap_record_of_the_wrong_shape_is_a_clear_error(repo: Path, content: str) -> None:
    record = repo / ".refarch" / "bootstrap.json"
    record.parent.mkdir(mode=0o700)
    record.write_bytes(content.encode("utf-8", "surrogateescape"))
    result = invoke("bootstrap", str(repo), "--endpoint-url", "http://127.0.0.1:9")
    assert result.exit_code == 2, result.output
    assert f"{record}: the bootstrap record is unreadable" in result.output
    assert "delete it" in result.output


def test_a_refarch_toml_that_is_not_utf8_names_the_line(repo: Path) -> None:
    (repo / "refarch.toml").write_bytes(b'region = "us-east-1"\n# caf\xe9\n')
    result = invoke("plan", str(repo))
    assert result.exit_code == 2
    assert f"{repo / 'refarch.toml'}:2: is not UTF-8 text" in result.output


def test_validate_on_a_binary_tf_file_or_a_folder_named_tf(repo: Path) -> None:
    (repo / "modules/app/outputs.tf").mkdir()  # Terraform skips a folder named *.tf
    clean = invoke("validate", str(repo))
    assert clean.exit_code == 0, clean.output
    (repo / "modules/app/main.tf").write_bytes(b"# ok\n\x00\x01\x02\xff\xfe\n")
    result = invoke("validate", str(repo), "--json")
    assert result.exit_code == 2
    [mismatch] = json.loads(result.stdout)["mismatches"]
    assert "main.tf:2: is not UTF-8 text" in mismatch["detail"]


def test_validate_from_a_subfolder_reads_the_repo_root(repo: Path) -> None:
    (repo / "dev/us-east-1/app/terragrunt.hcl").write_text(
        REPO["dev/us-east-1/app/terragrunt.hcl"].replace('name = "app"', 'nmae = "app"')
    )
    result = invoke("validate", str(repo / "dev" / "us-east-1"), "--json")
    assert result.exit_code == 2
    details = {m["path"]: m["detail"] for m in json.loads(result.stdout)["mismatches"]}
    assert any(path.startswith("dev/us-east-1/app/") and "nmae" in d for path, d in details.items()), details


def test_new_into_a_symlink_to_an_empty_folder_renders_into_that_folder(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    result = invoke(
        "new", str(link), "--org", "acme", "--accounts",
        "security=111111111111,shared-services=222222222222,dev=444444444444",
        "--regions", "us-east-1", "--flavour", "demo",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and (real / "root.hcl").is_file()
