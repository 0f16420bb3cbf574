"""Terragrunt's behaviour where refarch follows it: each test loads a fixture of
tests/fixtures/terragrunt_semantics (the corpus test checks their `_expect` facts too)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from refarch import graph, load_repo, plan
from refarch.cli import cli

SEMANTICS = Path(__file__).parent.parent / "fixtures" / "terragrunt_semantics"


@pytest.fixture
def copy(tmp_path):
    """A private copy of a fixture (a load may write .refarch/cache into it)."""

    def make(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(SEMANTICS / name, target)
        return target

    return make


# -- external dependencies ---------------------------------------------------------------------
def test_external_dependency_is_read_shown_and_not_queued(copy):
    live = copy("external-dependency") / "live"
    repo = load_repo(live, cache=False)
    external = repo.unit("../shared/network/vpc")
    assert external.external and not repo.unit("dev/app").external
    assert set(repo.unit("dev/app").dependencies) == {"dev/db", "../shared/network/vpc"}
    assert repo.unit("dev/app").inputs["vpc_id"] == "vpc-mock"
    # It never makes a run wait on a later account tier.
    assert external.tier == repo.unit("dev/app").tier

    default = plan(repo)
    assert set(default.units) == {"dev/app", "dev/db"}
    assert default.external == ("../shared/network/vpc",)
    assert default.units["dev/db"].assumed == ("../shared/network/vpc",)
    assert default.to_json()["external"] == ["../shared/network/vpc"]

    queued = plan(repo, queue_include_external=True)
    assert set(queued.units) == {"dev/app", "dev/db", "../shared/network/vpc"}
    assert queued.units["dev/db"].waits_for == ("../shared/network/vpc",)
    assert queued.external == ()


def test_external_dependency_in_the_cli(copy):
    live = str(copy("external-dependency") / "live")
    runner = CliRunner()
    shown = runner.invoke(cli, ["plan", live, "--no-cache"])
    assert shown.exit_code == 0, shown.output
    assert "external, outside DIR" in shown.output and "../shared/network/vpc" in shown.output
    explicit = runner.invoke(cli, ["plan", live, "--no-cache", "--queue-exclude-external", "--json"])
    assert json.loads(explicit.output)["external"] == ["../shared/network/vpc"]
    queued = runner.invoke(cli, ["plan", live, "--no-cache", "--queue-include-external", "--json"])
    assert ["../shared/network/vpc"] in json.loads(queued.output)["groups"]

    units = {
        u["path"]: u for u in json.loads(runner.invoke(cli, ["graph", live, "--no-cache"]).output)["units"]
    }
    assert units["../shared/network/vpc"]["external"] is True
    dot = runner.invoke(cli, ["graph", live, "--no-cache", "--format", "dot"]).output
    assert '"../shared/network/vpc" [label="../shared/network/vpc (external)" style="dotted"]' in dot
    hidden = runner.invoke(cli, ["graph", live, "--no-cache", "--queue-exclude-external"]).output
    assert "../shared" not in hidden


def test_graph_without_external_drops_the_edges_too(copy):
    repo = graph.without_external(load_repo(copy("external-dependency") / "live", cache=False))
    assert sorted(repo.units) == ["dev/app", "dev/db"]
    assert repo.unit("dev/app").dependencies == ("dev/db",)


# -- prevent_destroy in destroy-all ------------------------------------------------------------
def test_prevent_destroy_keeps_the_unit_and_its_dependencies(copy):
    repo = load_repo(copy("prevent-destroy"), cache=False)
    destroy = plan(repo, "destroy")
    assert set(destroy.units) == {"app", "logs"}
    assert destroy.reasons == {
        "db": "prevent_destroy = true",
        "vpc": "a dependency of db, which has prevent_destroy = true",
    }
    assert set(plan(repo, "apply").units) == {"app", "db", "logs", "vpc"}


def test_plan_action_destroy_shows_the_protected_units_with_their_reason(copy):
    result = CliRunner().invoke(
        cli, ["plan", str(copy("prevent-destroy")), "--action", "destroy", "--no-cache"]
    )
    assert result.exit_code == 0, result.output
    assert "db  (prevent_destroy = true)" in result.output
    assert "vpc  (a dependency of db, which has prevent_destroy = true)" in result.output


# -- an --include that matches nothing ---------------------------------------------------------
@pytest.mark.parametrize("verb", [["plan"], ["apply", "--non-interactive"], ["destroy", "--non-interactive"]])
def test_include_matching_nothing_selects_nothing_and_succeeds(copy, verb):
    result = CliRunner().invoke(cli, [*verb, str(copy("prevent-destroy")), "--include", "nothing/*"])
    assert result.exit_code == 0, result.output
    assert "warning: --include nothing/* matches no unit" in result.output


# -- DOT edges as Terragrunt draws them --------------------------------------------------------
def test_dot_edges_point_from_dependent_to_dependency(copy):
    dot = graph.to_dot(load_repo(copy("prevent-destroy"), cache=False))
    assert '"app" -> "db";' in dot and '"db" -> "vpc";' in dot
    assert '"db" -> "app";' not in dot


# -- include merge order -----------------------------------------------------------------------
def test_includes_merge_in_terragrunts_order_and_strategies(copy):
    app = load_repo(copy("include-merge-order"), cache=False).unit("units/app")
    assert app.inputs == {
        "list": ["b", "c"],
        "map": {"b": 2, "shared": "b", "c": 3},
        "only_a": "a",
        "over": "b",
        "vpc": {"tags": ["b", "c"], "name": "b"},
    }
    assert app.remote_state is not None and dict(app.remote_state.config) == {"bucket": "b"}
    assert app.dependencies == ("units/vpc", "units/x", "units/y")


# -- hidden folders ----------------------------------------------------------------------------
def test_hidden_folders_are_searched_unless_no_hidden(copy):
    root = copy("hidden-folders")
    assert sorted(load_repo(root, cache=False).units) == [".hidden/app", "visible"]
    assert not load_repo(root, cache=False).unit(".hidden/app").external
    no_hidden = load_repo(root, cache=False, hidden=False)
    assert no_hidden.unit(".hidden/app").external  # reached only as a dependency
    assert plan(no_hidden).external == (".hidden/app",) and list(plan(no_hidden).units) == ["visible"]
    result = CliRunner().invoke(
        cli, ["graph", str(root), "--no-cache", "--no-hidden", "--queue-exclude-external"]
    )
    assert result.exit_code == 0, result.output
    assert [u["path"] for u in json.loads(result.output)["units"]] == ["visible"]


# -- excludes files ----------------------------------------------------------------------------
def test_terragrunt_excludes_file_at_the_root_and_queue_excludes_file(copy, tmp_path):
    root = copy("excludes-file")
    default = plan(load_repo(root, cache=False))
    assert set(default.units) == {"b"}
    assert default.reasons["a"] == "listed in the excludes file"
    other = tmp_path / "mine.txt"
    other.write_text("b\n")
    result = CliRunner().invoke(
        cli, ["plan", str(root), "--no-cache", "--json", "--queue-excludes-file", str(other)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["skipped"] == ["b"]
    missing = CliRunner().invoke(cli, ["plan", str(root), "--no-cache", "--queue-excludes-file", "nope.txt"])
    assert missing.exit_code == 2 and "excludes file" in missing.output


# -- feature flags -----------------------------------------------------------------------------
def test_feature_flags_from_the_command_line_and_tg_feature(copy):
    root = copy("feature-flags")
    assert load_repo(root, cache=False, env={}).unit("app").inputs == {"logging": False, "size": "small"}
    from_env = load_repo(root, cache=False, env={"TG_FEATURE": "logging=true,size=large"})
    assert from_env.unit("app").inputs == {"logging": True, "size": "large"}
    flag_wins = load_repo(root, cache=False, env={"TG_FEATURE": "size=large"}, features={"size": "xl"})
    assert flag_wins.unit("app").inputs == {"logging": False, "size": "xl"}
    assert flag_wins.features == {"size": "xl"}
    result = CliRunner().invoke(cli, ["graph", str(root), "--feature", "logging=true"])
    assert result.exit_code == 0, result.output
    # The on-disk cache keys units by the flags' values too.
    assert load_repo(root, features={"logging": "false"}).unit("app").inputs["logging"] is False
    assert load_repo(root, features={"logging": "true"}).unit("app").inputs["logging"] is True


def test_feature_flag_values_are_checked(copy):
    from refarch.errors import ConfigError, UsageError

    root = copy("feature-flags")
    with pytest.raises(ConfigError, match="feature logging is a bool"):
        load_repo(root, cache=False, features={"logging": "maybe"})
    result = CliRunner().invoke(cli, ["plan", str(root), "--feature", "oops"])
    assert result.exit_code == 2 and "expected NAME=VALUE" in result.output
    assert UsageError.exit_code == 2


# -- terragrunt.hcl.json -----------------------------------------------------------------------
def test_json_units_and_includes(copy):
    repo = load_repo(copy("json-config"), cache=False)
    app = repo.unit("app")
    assert app.terraform["extra_arguments"]["retry_lock"]["arguments"] == ["-lock-timeout=20m"]
    assert app.inputs["vpc"] == {"vpc_id": "vpc-mock", "subnets": ["a", "b"]}  # "${x}" is x itself
    assert repo.unit("both").inputs == {"syntax": "json"}
    assert app.files == ("app/terragrunt.hcl.json", "root.hcl.json")


def test_json_bare_include_and_syntax_errors(tmp_path):
    from refarch.errors import HclSyntaxError
    from tests.helpers import write_tree

    write_tree(
        tmp_path,
        {
            "root.hcl": 'inputs = {\n  from_root = "yes"\n}\n',
            "app/terragrunt.hcl.json": '{"include": {"path": "${find_in_parent_folders(\\"root.hcl\\")}"}}',
            "bad/terragrunt.hcl.json": '{\n  "inputs": {\n    "a": \n  }\n}\n',
        },
    )
    with pytest.raises(HclSyntaxError) as caught:
        load_repo(tmp_path, cache=False)
    assert caught.value.path == "bad/terragrunt.hcl.json" and caught.value.line == 4
    (tmp_path / "bad" / "terragrunt.hcl.json").unlink()
    assert load_repo(tmp_path, cache=False).unit("app").inputs == {"from_root": "yes"}


# -- read_terragrunt_config fills Terragrunt's defaults in -------------------------------------
def test_read_terragrunt_config_has_terragrunts_defaults(copy):
    inputs = load_repo(copy("read-config-defaults"), cache=False).unit("app").inputs
    assert inputs == {
        "iam_role": "",
        "download_dir": "",
        "extra_arguments": {},
        "lock_file": None,
        "disable_init": False,
        "vpc_enabled": None,
        # a generate block as Terragrunt decodes it
        "gen_if_disabled": "skip",
        "gen_comment": "# ",
        "gen_signature": False,
        "gen_disable": False,
    }


# -- Terragrunt's flag names and TG_* variables for refarch's own options ------------------------
def test_queue_flag_aliases_and_tg_variables_in_plan(copy):
    root = str(copy("queue-flags"))
    runner = CliRunner()

    def units(args, env=None):
        result = runner.invoke(cli, ["plan", root, "--no-cache", "--json", *args], env=env)
        assert result.exit_code == 0, result.output
        return sorted(p for g in json.loads(result.output)["groups"] for p in g)

    # Terragrunt >= 0.97: an include no longer pulls in dependencies (--queue-strict-include
    # is a no-op); --queue-include-external (refarch's --with-dependencies) does
    assert units(["--queue-include-dir", "b"]) == ["b"]
    assert units(["--queue-include-dir", "b", "--queue-include-external"]) == ["a", "b"]
    assert units(["--queue-include-dir", "b", "--with-dependencies"]) == ["a", "b"]
    assert units(["--queue-include-dir", "b", "--queue-strict-include"]) == ["b"]
    assert units(["--queue-exclude-dir", "c"]) == ["a", "b"]
    assert units([], env={"TG_QUEUE_INCLUDE_DIR": "b,c"}) == ["b", "c/nested"]
    assert units([], env={"TG_QUEUE_INCLUDE_DIR": "b", "TG_QUEUE_STRICT_INCLUDE": "true"}) == ["b"]
    assert units([], env={"TG_QUEUE_EXCLUDE_DIR": "a,b"}) == ["c/nested"]
    assert units([], env={"TG_FEATURE": "unused=1"}) == ["a", "b", "c/nested"]


def test_run_verbs_take_tg_variables_as_defaults(monkeypatch):
    root = str(SEMANTICS / "queue-flags")  # only parsed here: nothing is read or written

    from refarch.cli.run_cmd import commands

    monkeypatch.setenv("TG_PARALLELISM", "7")
    monkeypatch.setenv("TG_NON_INTERACTIVE", "true")
    monkeypatch.setenv("TG_TF_PATH", "/opt/tofu/bin/tofu")
    monkeypatch.setenv("TG_QUEUE_INCLUDE_DIR", "a,b")
    monkeypatch.setenv("TG_QUEUE_INCLUDE_EXTERNAL", "true")
    for command in commands:
        params = command.make_context(command.name, [root]).params
        assert params["parallelism"] == 7 and params["non_interactive"] is True
        assert params["tf_path"] == "/opt/tofu/bin/tofu"
        assert params["include"] == ("a", "b") and params["queue_include_external"] is True
    given = commands[0].make_context("apply", [root, "-j", "2"]).params
    assert given["parallelism"] == 2  # a flag wins over the variable


def test_a_run_reads_an_external_dependencys_outputs_and_does_not_run_it(copy):
    from refarch.engines import EngineResult
    from refarch.exec.process import ProcessResult
    from refarch.runner.run import RunOptions, run
    from refarch.runner.unit import UnitAccess

    class Engine:
        name = "fake"

        def __init__(self):
            self.ran, self.read, self.handed = [], [], {}

        def execute(self, job):
            self.ran.append(job.unit.path)
            self.handed[job.unit.path] = dict(job.dependency_outputs)
            return EngineResult(ProcessResult(("fake",), "/", 0, "", "", 0.0), None)

        def read_outputs(self, job):
            self.read.append(job.unit.path)
            return {"vpc_id": "vpc-real"}

    class Credentials:
        def for_unit(self, unit):
            return UnitAccess({}, {"Account": "1"})

    engine = Engine()
    repo = load_repo(copy("external-dependency") / "live", cache=False)
    report = run(
        plan(repo),
        "apply",
        engine=engine,
        credentials=Credentials(),
        base_env={},
        options=RunOptions(history=False),
    )
    assert report.exit_code == 0
    assert sorted(engine.ran) == ["dev/app", "dev/db"]
    assert engine.read == ["../shared/network/vpc"]  # read once, shared by both dependents
    assert engine.handed["dev/app"]["vpc"] == {"vpc_id": "vpc-real"}


def test_a_deep_include_lets_the_child_override_a_generate_block(copy):
    root = copy("generate-same-name")
    shutil.rmtree(root / "shallow")
    (provider,) = load_repo(root, cache=False).unit("deep").generate
    assert "eu-west-1" in provider.contents
