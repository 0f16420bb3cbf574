"""examples/deploy.py, the README's library example, runs as documented."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def run(*args):
    return subprocess.run(
        [sys.executable, str(ROOT / "examples/deploy.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_shows_accounts_and_groups(live_repo):
    result = run(str(live_repo))
    assert result.returncode == 0, result.stderr
    assert "security         tier 1  2 unit(s)" in result.stdout
    assert "group 1: security/us-east-1/iam" in result.stdout


def test_a_configuration_error_exits_2_with_the_file(tmp_path):
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / "terragrunt.hcl").write_text('dependency "x" {\n  config_path = "../nope"\n}\n')
    result = run(str(tmp_path))
    assert result.returncode == 2
    assert "u/terragrunt.hcl:1" in result.stderr
