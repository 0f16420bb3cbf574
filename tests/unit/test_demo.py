"""The demo's guards: its own work folder only, no proxy, no caller AWS variables, no endpoint
but its own; and the data folders an installed wheel carries."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from refarch.errors import ToolNotFound, UsageError
from refarch.jobs.demo import (
    MARKER,
    child_env,
    claim_workdir,
    refuse_proxies,
    refuse_unless_embedded,
    require_tools,
)
from refarch.jobs.demo_real import provider_installation
from refarch.models import Repo
from refarch.resources import DATA_FOLDERS, PACKAGE_DIR, data_dir
from refarch.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_a_folder_the_demo_did_not_make_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="not a refarch demo folder"):
        claim_workdir(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_new_or_demo_folder_is_claimed(tmp_path: Path) -> None:
    claim_workdir(tmp_path / "new")
    assert (tmp_path / "new" / MARKER).is_file()
    (tmp_path / "new" / "live").mkdir()
    claim_workdir(tmp_path / "new")  # the demo's own folder: claimed again


@pytest.mark.parametrize(
    "env",
    [
        {"HTTPS_PROXY": "http://proxy:3128"},
        {"http_proxy": "http://proxy:3128", "NO_PROXY": "localhost"},
    ],
)
def test_a_proxy_that_would_carry_loopback_calls_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(UsageError, match="NO_PROXY"):
        refuse_proxies(env)


def test_a_proxy_that_exempts_loopback_is_accepted() -> None:
    refuse_proxies({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "localhost,127.0.0.1"})


def test_tools_get_fake_credentials_and_the_embedded_endpoint_only() -> None:
    env = child_env(
        {
            "PATH": "/bin",
            "AWS_PROFILE": "prod",
            "AWS_SESSION_TOKEN": "t",
            "AWS_ENDPOINT_URL_S3": "https://s3.amazonaws.com",
            "HTTPS_PROXY": "http://proxy:3128",
        },
        "http://127.0.0.1:5000",
    )
    assert env["PATH"] == "/bin"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5000"
    assert not {"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "HTTPS_PROXY"} & set(env)
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == env["AWS_CONFIG_FILE"]


class NoCalls:
    """AwsSessions stand-in: the endpoint check must refuse before any call is made."""

    def caller_identity(self) -> dict[str, str]:
        raise AssertionError("no AWS call may be made")


@pytest.mark.parametrize("configured", [None, "https://sts.amazonaws.com", "http://127.0.0.1:9"])
def test_an_endpoint_other_than_the_embedded_one_is_refused(tmp_path: Path, configured: str | None) -> None:
    settings = Settings(endpoint_url=configured)
    repo = Repo(root=tmp_path, units={}, accounts=(), settings=settings)
    with pytest.raises(UsageError, match="embedded server"):
        refuse_unless_embedded(settings, repo, "http://127.0.0.1:5000", NoCalls())  # type: ignore[arg-type]


def test_data_folders_are_found_in_the_checkout_and_packed_into_the_wheel() -> None:
    for name in DATA_FOLDERS:
        assert data_dir(name) == ROOT / name and data_dir(name).is_dir()
    assert PACKAGE_DIR == ROOT / "refarch"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    force = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert force == {name: f"refarch/_data/{name}" for name in DATA_FOLDERS}
    with pytest.raises(ValueError, match="not a refarch data folder"):
        data_dir("tests")


def test_a_missing_packer_is_reported_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(ToolNotFound, match="packer") as caught:
        require_tools({"PATH": str(tmp_path)})
    assert "make setup" in str(caught.value)


def test_the_real_demo_says_how_to_get_the_provider_when_there_is_none(tmp_path: Path) -> None:
    env = {"REFARCH_TF_PLUGIN_MIRROR": str(tmp_path / "none")}
    with pytest.raises(ToolNotFound, match="REFARCH_TF_PLUGIN_MIRROR") as raised:
        provider_installation(env, probe=lambda: False)
    assert "registry.terraform.io is not reachable" in str(raised.value)
    assert provider_installation(env, probe=lambda: True) == ("", "registry")
    mirror = tmp_path / "mirror"
    (mirror / "registry.terraform.io" / "hashicorp" / "aws").mkdir(parents=True)
    text, source = provider_installation({"REFARCH_TF_PLUGIN_MIRROR": str(mirror)}, probe=pytest.fail)
    assert source == f"mirror {mirror}"
    assert f'path    = "{mirror}"' in text and 'exclude = ["registry.terraform.io/hashicorp/aws"]' in text


def test_the_real_demo_refuses_keep() -> None:
    from click.testing import CliRunner

    from refarch.cli import cli

    result = CliRunner().invoke(cli, ["demo", "--modules", "real", "--keep"])
    assert result.exit_code == 2 and "--keep is for the twins" in result.output


def test_the_real_demo_leaves_out_what_the_emulator_cannot_run_and_what_was_not_asked(
    tmp_path: Path,
) -> None:
    from refarch.jobs.demo import DOMAIN, ORG, REGION
    from refarch.jobs.demo_real import REAL_ACCOUNTS, UNSUPPORTED, _leave_out
    from refarch.planner import plan
    from refarch.render import render_live_repo
    from refarch.repo import load_repo

    root = tmp_path / "live"
    render_live_repo(root, org=ORG, accounts=REAL_ACCOUNTS, regions=[REGION], domain=DOMAIN, flavour="aws")
    left = _leave_out(root, None)
    assert left == {"dev/us-east-1/redis": left["dev/us-east-1/redis"]}
    assert "elasticache-redis" in UNSUPPORTED and "CacheClusterNotFound" in left["dev/us-east-1/redis"]
    original = {"vpc", "ecs-cluster", "ecs-service", "openvpn-server", "cloudtrail", "log-archive"}
    original |= {"kms-admin", "iam-groups", "ecr-repos", "route53"}
    _leave_out(root, original)
    env = {"PATH": "/bin", "AWS_ENDPOINT_URL": "http://127.0.0.1:1"}
    units = load_repo(root, env=env, cache=False).units.values()
    assert {Path(u.source or "").name for u in units} == original  # what is left still resolves
    assert len(plan(load_repo(root, env=env, cache=False), "apply").units) == len(units)
