"""Terraform functions as refarch evaluates them, one expression at a time."""

import hashlib

import pytest

from refarch.config.evaluate import Loader, Scope, UnitContext
from refarch.config.hcl import parse_expression
from refarch.config.values import Unknown
from refarch.errors import EvaluationError


def ev(expr: str, tmp_path, env=None):
    (tmp_path / "terragrunt.hcl").write_text("")
    loader = Loader(tmp_path, env=env or {})
    ctx = UnitContext(loader, tmp_path / "terragrunt.hcl")
    scope = Scope(ctx, tmp_path / "terragrunt.hcl", ())
    return scope.value(parse_expression(expr), {}, 1)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("merge({a = 1, b = 2}, {b = 3})", {"a": 1, "b": 3}),
        ("concat([1], [2, 3])", [1, 2, 3]),
        ('lookup({a = 1}, "b", 9)', 9),
        ('lookup({a = 1}, "a")', 1),
        ('format("%s-%03d-%v", "x", 7, true)', "x-007-true"),
        ('format("%q", "hi")', '"hi"'),
        ('lower("AbC")', "abc"),
        ('upper("AbC")', "ABC"),
        ('replace("a-b-c", "-", "_")', "a_b_c"),
        ('replace("prod-us-east-1", "/-(\\\\w+)-/", "_$${1}_")', "prod_us_east-1"),
        ('replace("a-b", "/-/", "$1_")', "ab"),
        ('split(",", "a,b,c")', ["a", "b", "c"]),
        ('join("/", ["a", "b"])', "a/b"),
        ("jsonencode({b = 1, a = [true, null]})", '{"a":[true,null],"b":1}'),
        ('jsondecode("{\\"a\\": [1, 2]}")', {"a": [1, 2]}),
        ('dirname("/x/y/root.hcl")', "/x/y"),
        ('basename("/x/y/root.hcl")', "root.hcl"),
        ("length([1, 2, 3])", 3),
        ("keys({b = 1, a = 2})", ["a", "b"]),
        ("values({b = 1, a = 2})", [2, 1]),
        ("flatten([[1, [2]], 3])", [1, 2, 3]),
        ("distinct([1, 1, 2])", [1, 2]),
        ('contains(["a"], "a")', True),
        ('element(["a", "b"], 3)', "b"),
        ('coalesce("", null, "x")', "x"),
        ('cidrsubnet("10.0.0.0/16", 8, 2)', "10.0.2.0/24"),
        ('cidrhost("10.0.0.0/24", 5)', "10.0.0.5"),
        ('trimprefix("refarch-x", "refarch-")', "x"),
        ('substr("hello", 1, 3)', "ell"),
        ("max(1, 5, 3)", 5),
        ("range(3)", [0, 1, 2]),
        ('zipmap(["a", "b"], [1, 2])', {"a": 1, "b": 2}),
        ("tostring(5)", "5"),
        ('tonumber("7")', 7),
        ('tobool("true")', True),
        ('regex("^(\\\\w+)-(\\\\d+)$", "app-12")', ["app", "12"]),
        ('try(lookup({}, "missing"), "fallback")', "fallback"),
        ('can(lookup({}, "missing"))', False),
        ('can(lookup({a = 1}, "a"))', True),
        ('true ? "yes" : "no"', "yes"),
        ("1 + 2 * 3 == 7 && !false", True),
        ("[for x in [1, 2, 3] : x * 2 if x != 2]", [2, 6]),
        ("{for k, v in {a = 1, b = 2} : v => k}", {"1": "a", "2": "b"}),
        ('{for x in ["a", "b", "a"] : x => x...}', {"a": ["a", "a"], "b": ["b"]}),
        ("[{a = 1}, {a = 2}][*].a", [1, 2]),
        ("{a = [10, 20]}.a[1]", 20),
        ("merge([{a = 1}, {b = 2}]...)", {"a": 1, "b": 2}),
        ('"${1 + 1}-${true}"', "2-true"),
        ("-5 % 3", 1),
        ('"a%{ if 1 == 1 }yes%{ else }no%{ endif }b"', "ayesb"),
        ('"%{ for i, x in ["p", "q"] }${i}${x},%{ endfor }"', "0p,1q,"),
        ('"[ %{~ if false }x%{ else ~} y %{~ endif ~} ]"', "[y]"),
    ],
)
def test_function_values(expr, expected, tmp_path):
    assert ev(expr, tmp_path) == expected


def test_heredoc_directives_with_strip_markers(tmp_path):
    text = (
        "<<EOT\n"
        '%{ for name in ["a", "b"] ~}\n'
        "user ${name}\n"
        "%{ endfor ~}\n"
        "%{ if false }never%{ endif }done\n"
        "EOT"
    )
    assert ev(text, tmp_path) == "user a\nuser b\ndone\n"


def test_get_env_with_default_and_missing(tmp_path):
    assert ev('get_env("REFARCH_X", "d")', tmp_path) == "d"
    assert ev('get_env("REFARCH_X")', tmp_path, env={"REFARCH_X": "v"}) == "v"
    with pytest.raises(EvaluationError, match="REFARCH_X is not set") as info:
        ev('get_env("REFARCH_X")', tmp_path)
    assert info.value.function == "get_env"


def test_unknown_propagates_through_operations(tmp_path):
    value = ev('"${run_cmd("echo", "x")}-suffix"', tmp_path)
    assert isinstance(value, Unknown)
    assert isinstance(ev('upper(run_cmd("x"))', tmp_path), Unknown)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("nosuchfn(1)", "nosuchfn() is not supported"),
        ('lookup({}, "k")', "key 'k' not found"),
        ('1 + "a"', "expected a number"),
        ("{a = 1}.b", "has no key 'b'"),
        ("[1][5]", "out of range"),
        ('"x${[1]}"', "cannot interpolate a tuple"),
        ("local.nope", "local.nope is not defined"),
        ("var.x", "var.* is not available"),
        ("1 / 0", "division by zero"),
        ('"a" ? 1 : 2', "a condition must be a bool"),
    ],
)
def test_errors_name_the_problem_and_line(expr, message, tmp_path):
    with pytest.raises(
        EvaluationError,
        match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("*", r"\*"),
    ) as info:
        ev(expr, tmp_path)
    assert info.value.line == 1
    assert info.value.path == "terragrunt.hcl"


# -- the functions issue 10 added (Terraform's pure ones, and Terragrunt's) ----------------------
@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("log(8, 2)", 3.0),
        ('parseint("ff", 16)', 255),
        ('parseint("-Zz", 62)', -(61 * 62 + 35)),  # Go: a-z are 10-35, A-Z 36-61
        ("pow(2, 10)", 1024),
        ("signum(-7)", -1),
        ("chunklist([1, 2, 3, 4, 5], 2)", [[1, 2], [3, 4], [5]]),
        ('matchkeys(["a", "b", "c"], ["x", "y", "x"], ["x"])', ["a", "c"]),
        ("setintersection([1, 2, 3], [2, 3, 4], [3, 2])", [2, 3]),
        ("setsubtract([1, 2, 3], [2])", [1, 3]),
        ('setproduct(["a", "b"], [1, 2])', [["a", 1], ["a", 2], ["b", 1], ["b", 2]]),
        ('transpose({a = ["1", "2"], b = ["2"]})', {"1": ["a"], "2": ["a", "b"]}),
        ('csvdecode("a,b\\n1,2\\n")', [{"a": "1", "b": "2"}]),
        ('textencodebase64("hi", "UTF-16LE")', "aABpAA=="),
        ('textdecodebase64("aABpAA==", "UTF-16LE")', "hi"),
        ('urlencode("a b/c?")', "a%20b%2Fc%3F"),
        ('base64sha256("hello")', "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="),
        ('cidrnetmask("10.0.0.0/16")', "255.255.0.0"),
        (
            'cidrsubnets("10.1.0.0/16", 4, 4, 8, 4)',
            ["10.1.0.0/20", "10.1.16.0/20", "10.1.32.0/24", "10.1.48.0/20"],
        ),
        ('uuidv5("dns", "example.com")', "cfbff0d1-9375-5685-968c-48ce8b15ae17"),
        ('timecmp("2024-01-01T00:00:00Z", "2024-01-01T01:00:00+01:00")', 0),
        ('timecmp("2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z")', -1),
        ('timeadd("2024-01-01T00:00:00Z", "1h30m")', "2024-01-01T01:30:00Z"),
        ('timeadd("2024-01-01T00:00:00Z", "-10s")', "2023-12-31T23:59:50Z"),
        ('formatdate("DD MMM YYYY hh:mm ZZZ", "2018-01-02T23:12:01Z")', "02 Jan 2018 23:12 UTC"),
        ('formatdate("EEEE, \'at\' h:mm aa", "2018-01-02T23:12:01-08:00")', "Tuesday, at 23:12 pm"),
        ('sensitive("secret")', "secret"),
        ('nonsensitive("x")', "x"),
        ("deep_merge({a = {b = 1, l = [1]}}, {a = {c = 2, l = [2]}})", {"a": {"b": 1, "c": 2, "l": [1, 2]}}),
        ("length(get_default_retryable_errors())", 30),
        ("get_terragrunt_source_cli_flag()", ""),
        ('mark_as_read("/x/y")', "/x/y"),
    ],
)
def test_more_functions(expr, expected, tmp_path):
    assert ev(expr, tmp_path) == expected


def test_file_functions_read_relative_to_the_unit_and_are_recorded(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "env.yaml").write_text("name: dev\n")
    (tmp_path / "conf" / "app.tfvars").write_text('size = "small"\ncount = 2\n')
    (tmp_path / "conf" / "b.tfvars.json").write_text('{"x": [1]}')
    (tmp_path / "greeting.tpl").write_text("hello ${name}%{ for i in items }-${i}%{ endfor }")
    assert ev('yamldecode(file("conf/env.yaml"))', tmp_path) == {"name": "dev"}
    assert ev('filesha256("conf/env.yaml")', tmp_path) == hashlib.sha256(b"name: dev\n").hexdigest()
    assert ev('templatefile("greeting.tpl", { name = "you", items = [1, 2] })', tmp_path) == "hello you-1-2"
    assert ev('fileset(".", "conf/*.tfvars*")', tmp_path) == ["conf/app.tfvars", "conf/b.tfvars.json"]
    assert ev('jsondecode(read_tfvars_file("conf/app.tfvars"))', tmp_path) == {"size": "small", "count": 2}
    assert ev('jsondecode(read_tfvars_file("conf/b.tfvars.json"))', tmp_path) == {"x": [1]}
    found = ev('mark_glob_as_read("conf/**/*.yaml")', tmp_path)
    assert found == [str(tmp_path / "conf" / "env.yaml")]
    with pytest.raises(EvaluationError, match=r"cannot read nope\.txt"):
        ev('file("nope.txt")', tmp_path)


def test_session_and_run_time_functions_are_unknown_offline(tmp_path):
    assert ev("get_aws_account_alias()", tmp_path) == Unknown("get_aws_account_alias()")
    assert ev("get_working_dir()", tmp_path) == str(tmp_path)
    assert ev("get_terragrunt_source_cli_flag()", tmp_path, env={"TG_SOURCE": "/src"}) == "/src"
    assert isinstance(ev('run_cmd("echo", "hi")', tmp_path), Unknown)
    assert isinstance(ev('sops_decrypt_file("x.yaml")', tmp_path), Unknown)


@pytest.mark.parametrize(
    ("version", "constraint", "expected"),
    [
        ("1.5.7", ">= 1.2, < 2.0", True),
        ("2.0.0", ">= 1.2, < 2.0", False),
        ("1.2.9", "~> 1.2.0", True),
        ("1.3.0", "~> 1.2.0", False),
        ("1.9.0", "~> 1.2", True),
        ("2.0.0", "~> 1.2", False),
        ("v0.67.16", "!= 0.67.16", False),
        ("1.0.0-beta1", "< 1.0.0", True),
    ],
)
def test_constraint_check(version, constraint, expected, tmp_path):
    assert ev(f'constraint_check("{version}", "{constraint}")', tmp_path) is expected
