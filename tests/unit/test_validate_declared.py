"""refarch validate: what bootstrap is asked to make must have a consumer, and a declared
password counts as set for the module variable of its name (TF_VAR_<name> at apply)."""

from __future__ import annotations

from pathlib import Path

from refarch.render import render_live_repo
from refarch.validate import validate_repo

ACCOUNTS = {"security": "111111111111", "shared-services": "222222222222", "dev": "444444444444"}


def _render(tmp_path: Path) -> Path:
    target = tmp_path / "live"
    render_live_repo(target, org="acme", accounts=ACCOUNTS, regions=["us-east-1"], flavour="demo")
    return target


def test_the_rendered_repo_uses_everything_bootstrap_makes(tmp_path: Path) -> None:
    target = _render(tmp_path)
    text = (target / "bootstrap.hcl").read_text()
    assert 'passwords = ["master_password"]' in text
    assert '"*.internal.dev.acme.internal"' in text  # alb-internal of dev
    report = validate_repo(target)
    assert report.ok, [str(m) for m in report.mismatches]
    assert "dev/us-east-1/aurora" in report.checked  # master_password: not an input, yet not missing


def test_a_declared_password_certificate_or_key_pair_nothing_uses_is_reported(tmp_path: Path) -> None:
    target = _render(tmp_path)
    path = target / "bootstrap.hcl"
    text = path.read_text()
    text = text.replace('passwords = ["master_password"]', 'passwords = ["master_password", "redis_token"]')
    text = text.replace('default = "acme-default"', 'default = "acme-default"\n    spare = "acme-spare"')
    text = text.replace(
        'cloudfront = ["*.acme.internal"]', 'cloudfront = ["*.acme.internal", "cdn.acme.internal"]'
    )
    path.write_text(text)
    report = validate_repo(target)
    found = {(m.path, m.detail.split(" is declared")[0]) for m in report.mismatches}
    assert found == {
        ("bootstrap.hcl", "password 'redis_token'"),
        ("bootstrap.hcl", "key pair 'acme-spare'"),
        ("bootstrap.hcl", "certificate 'cdn.acme.internal'"),
    }
    lines = text.splitlines()
    for mismatch in report.mismatches:
        assert mismatch.line is not None
        name = mismatch.detail.split("'")[1]
        assert name in lines[mismatch.line - 1]
        assert "use it in a unit or remove it" in str(mismatch) and mismatch.units == ()


def test_a_password_in_refarch_toml_is_checked_too_but_not_for_a_partial_validate(tmp_path: Path) -> None:
    target = _render(tmp_path)
    with (target / "refarch.toml").open("a") as handle:
        handle.write('\n[secrets]\npasswords = ["orphan_password"]\n')
    report = validate_repo(target)
    assert [(m.path, m.line) for m in report.mismatches] == [("refarch.toml", None)]
    assert "orphan_password" in report.mismatches[0].detail
    partial = validate_repo(target / "dev")  # a subfolder sees only some units: not judged
    assert not any("declared for" in m.detail for m in partial.mismatches)
