"""The multi-account live repo written for the tests, loaded and checked exactly."""

import pytest

from refarch import load_repo, plan

EXPECTED_EDGES = {
    "security/us-east-1/iam": (),
    "security/us-east-1/kms-admin": ("security/us-east-1/iam",),
    "shared-services/us-east-1/vpc": (),
    "shared-services/us-east-1/ecr": ("security/us-east-1/iam",),
    "logs/us-east-1/cloudtrail": ("security/us-east-1/kms-admin",),
    "dev/us-east-1/vpc": (),
    "dev/us-west-2/vpc": (),
    "dev/us-east-1/mysql": ("dev/us-east-1/vpc",),
    "dev/us-east-1/app": ("shared-services/us-east-1/ecr", "dev/us-east-1/mysql", "dev/us-east-1/vpc"),
    "stage/us-east-1/vpc": (),
    "stage/us-east-1/mysql": ("stage/us-east-1/vpc",),
    "stage/us-east-1/app": ("shared-services/us-east-1/ecr", "stage/us-east-1/mysql", "stage/us-east-1/vpc"),
    "prod/us-east-1/vpc": (),
    "prod/us-west-2/vpc": (),
    "prod/us-east-1/mysql": ("prod/us-east-1/vpc",),
    "prod/us-east-1/app": ("shared-services/us-east-1/ecr", "prod/us-east-1/mysql", "prod/us-east-1/vpc"),
    "prod/us-east-1/legacy": (),
}


@pytest.fixture(scope="module")
def repo():
    from tests.conftest import FIXTURES

    return load_repo(FIXTURES / "live", cache=False)


def test_units_and_edges(repo):
    assert {p: u.dependencies for p, u in repo.units.items()} == EXPECTED_EDGES


def test_accounts_tiers_and_regions(repo):
    from tests.conftest import ACCOUNTS

    accounts = {a.name: (a.id, a.tier, a.regions) for a in repo.accounts}
    assert accounts == {
        "security": (ACCOUNTS["security"], 1, ("us-east-1",)),
        "shared-services": (ACCOUNTS["shared-services"], 2, ("us-east-1",)),
        "logs": (ACCOUNTS["logs"], 3, ("us-east-1",)),
        "dev": (ACCOUNTS["dev"], 3, ("us-east-1", "us-west-2")),
        "stage": (ACCOUNTS["stage"], 3, ("us-east-1",)),
        "prod": (ACCOUNTS["prod"], 3, ("us-east-1", "us-west-2")),
    }
    assert [a.name for a in repo.accounts][:2] == ["security", "shared-services"]


def test_remote_state_is_evaluated_per_unit(repo):
    unit = repo.unit("prod/us-west-2/vpc")
    assert unit.remote_state.backend == "s3"
    assert dict(unit.remote_state.config) == {
        "encrypt": True,
        "bucket": "acme-prod-us-west-2-tf-state",
        "key": "prod/us-west-2/vpc/terraform.tfstate",
        "region": "us-west-2",
        "dynamodb_table": "terraform-locks",
    }
    assert unit.remote_state.generate == {"path": "backend.tf", "if_exists": "overwrite_terragrunt"}
    assert unit.iam_role == "arn:aws:iam::666666666666:role/OrganizationAccountAccessRole"


def test_envcommon_inputs_and_mocks(repo):
    app = repo.unit("stage/us-east-1/app")
    assert app.inputs["service_name"] == "app-stage"
    assert app.inputs["image"] == "222222222222.dkr.ecr.us-east-1.amazonaws.com/app:latest"
    assert app.inputs["aws_account_id"] == "555555555555"
    assert repo.unit("prod/us-east-1/vpc").inputs["num_nat_gateways"] == 3
    assert repo.unit("dev/us-east-1/vpc").inputs["num_nat_gateways"] == 1
    assert repo.unit("prod/us-east-1/mysql").inputs["allocated_storage"] == 100
    assert repo.unit("logs/us-east-1/cloudtrail").inputs["s3_bucket"] == "acme-cloudtrail-333333333333"
    assert repo.unit("security/us-east-1/kms-admin").prevent_destroy
    assert repo.unit("prod/us-east-1/legacy").skip
    gen = {g.name: g for g in app.generate}["provider"]
    assert 'allowed_account_ids = ["555555555555"]' in gen.contents


def test_plan_of_the_whole_repo(repo):
    p = plan(repo)
    assert p.groups[0] == ("security/us-east-1/iam",)
    assert p.groups[1] == ("security/us-east-1/kms-admin",)
    assert set(p.groups[2]) == {"shared-services/us-east-1/ecr", "shared-services/us-east-1/vpc"}
    assert p.groups[-1] == ("dev/us-east-1/app", "prod/us-east-1/app", "stage/us-east-1/app")
    assert p.skipped == ("prod/us-east-1/legacy",)
