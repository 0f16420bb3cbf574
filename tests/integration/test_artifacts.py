"""`refarch artifacts build`: Lambda packages and Docker images on the moto server.

The Lambda build is the rendered repo's own (python3 build.py); images are built by the
tests' stand-in docker (tests/stand_ins/docker), as the Terragrunt stand-in stands in for
Terragrunt. Each test is a few seconds.
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from refarch.aws import AwsSessions
from refarch.cli import cli
from refarch.errors import ToolNotFound
from refarch.jobs.artifacts import build_artifacts
from refarch.render import render_live_repo
from refarch.settings import Settings

pytestmark = pytest.mark.integration

ACCOUNTS = {"security": "111111111111", "shared-services": "222222222222", "dev": "444444444444"}
REGION = "us-east-1"
STAND_INS = Path(__file__).resolve().parents[1] / "stand_ins"


@pytest.fixture
def repo(tmp_path: Path, moto_server: Any) -> tuple[Path, AwsSessions, dict[str, str]]:
    root = tmp_path / "live"
    render_live_repo(root, org="acme", accounts=ACCOUNTS, regions=[REGION], flavour="demo")
    settings = Settings(endpoint_url=moto_server.endpoint_url, region=REGION)
    sessions = AwsSessions(settings)
    env = {
        **os.environ,
        "PATH": f"{STAND_INS}{os.pathsep}{os.environ['PATH']}",
        "STANDIN_DOCKER_STATE": str(tmp_path / "docker-images.json"),
        "STANDIN_DOCKER_RECORD": str(tmp_path / "docker-calls.jsonl"),
    }
    sessions.client(
        "ecr", ACCOUNTS["shared-services"], REGION, account_name="shared-services"
    ).create_repository(repositoryName="sample-app")
    return root, sessions, env


def _auto(root: Path) -> str:
    return (root / "artifacts.auto.hcl").read_text()


def test_builds_uploads_and_feeds_the_package_and_the_image(
    repo: tuple[Path, AwsSessions, dict[str, str]],
) -> None:
    root, sessions, env = repo
    assert 'hello = "lambda/hello/unbuilt.zip"' in _auto(root)
    report = build_artifacts(root, settings=sessions.settings, sessions=sessions, env=env)
    assert report.ok, report.results
    package, image = report.results
    assert (package.status, image.status) == ("built", "built")
    assert package.reference == f"lambda/hello/{package.source_hash}.zip"
    s3 = sessions.client("s3", ACCOUNTS["dev"], REGION, account_name="dev")
    body = s3.get_object(Bucket=f"acme-dev-{REGION}-artifacts", Key=package.reference)["Body"].read()
    assert zipfile.ZipFile(BytesIO(body)).namelist() == ["main.py"]
    assert s3.get_public_access_block(Bucket=f"acme-dev-{REGION}-artifacts")
    assert f'hello = "{package.reference}"' in _auto(root)
    assert image.reference.startswith("src-") and image.digest.startswith("sha256:")
    assert image.reference in _auto(root) and image.digest in _auto(root)
    calls = [json.loads(line) for line in Path(env["STANDIN_DOCKER_RECORD"]).read_text().splitlines()]
    assert [c["argv"][0] for c in calls] == ["login", "build", "push"]
    assert calls[0]["stdin"] and "--password-stdin" in calls[0]["argv"]  # never on the command line
    assert calls[2]["argv"][1].startswith("222222222222.dkr.ecr.")

    # Nothing changed: nothing is built or pushed again.
    again = build_artifacts(root, settings=sessions.settings, sessions=sessions, env=env)
    assert [r.status for r in again.results] == ["unchanged", "unchanged"]
    assert len(Path(env["STANDIN_DOCKER_RECORD"]).read_text().splitlines()) == 3


def test_a_failed_build_keeps_the_last_good_package_and_image(
    repo: tuple[Path, AwsSessions, dict[str, str]],
) -> None:
    root, sessions, env = repo
    first = build_artifacts(root, settings=sessions.settings, sessions=sessions, env=env)
    good = _auto(root)
    (root / "functions/hello/main.py").write_text("def handler(event, context):\n    return 2\n")
    (root / "functions/hello/build.py").write_text("raise SystemExit('compile error in main.py')\n")
    with (root / "images/sample-app/Dockerfile").open("a") as handle:
        handle.write("RUN false\n")
    report = build_artifacts(root, settings=sessions.settings, sessions=sessions, env=env)
    assert [r.status for r in report.results] == ["failed", "failed"]
    assert "compile error" in report.results[0].error
    assert report.results[0].reference == first.results[0].reference  # what the units keep
    assert _auto(root) == good


def test_without_a_builder_images_say_what_to_do(repo: tuple[Path, AwsSessions, dict[str, str]]) -> None:
    root, sessions, env = repo
    env = {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin{os.pathsep}/bin"}  # no docker
    with pytest.raises(ToolNotFound, match="docker is not installed") as error:
        build_artifacts(root, settings=sessions.settings, sessions=sessions, env=env)
    assert "builder" in str(error.value)
    # The package built before the image was refused is recorded all the same.
    assert 'hello = "lambda/hello/unbuilt.zip"' not in _auto(root)


def test_the_cli_builds_one_name_and_exits_1_on_a_failed_build(
    repo: tuple[Path, AwsSessions, dict[str, str]],
) -> None:
    root, sessions, env = repo
    cli_env = {**env, "AWS_ENDPOINT_URL": sessions.settings.endpoint_url or ""}
    result = CliRunner().invoke(cli, ["artifacts", "build", str(root), "hello"], env=cli_env)
    assert result.exit_code == 0, result.output
    assert "lambda hello: built lambda/hello/" in result.output
    (root / "functions/hello/build.py").write_text("raise SystemExit(3)\n")
    (root / "functions/hello/main.py").write_text("# changed\n")
    result = CliRunner().invoke(cli, ["artifacts", "build", str(root), "hello"], env=cli_env)
    assert result.exit_code == 1 and "lambda hello: failed" in result.output
    result = CliRunner().invoke(cli, ["artifacts", "build", str(root), "nope"], env=cli_env)
    assert result.exit_code == 2 and "not in artifacts.hcl: nope" in result.output
