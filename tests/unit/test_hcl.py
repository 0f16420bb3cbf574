"""Parsing HCL into refarch's tuple AST."""

import pytest

from refarch.config.hcl import parse_config, parse_text
from refarch.errors import HclSyntaxError


def test_blocks_attributes_and_lines():
    body = parse_text('locals {\n  a = 1\n}\n\ndependency "vpc" {\n  config_path = "../vpc"\n}\n')
    assert body[0][:3] == ("block", "locals", ())
    assert body[0][3][0] == ("attr", "a", ("lit", 1), 2)
    assert body[1][1:3] == ("dependency", ("vpc",))
    assert body[1][4] == 5


def test_heredoc_with_interpolation_and_trim():
    body = parse_text("x = <<-EOT\n    a ${local.b}\n      c\n    EOT\n")
    expr = body[0][2]
    assert expr[0] == "tmpl"
    assert expr[1][0] == "a "
    assert expr[1][1][:2] == ("attr", ("var", "local", 2))
    assert expr[1][2] == "\n  c\n"


def test_string_escapes_and_literal_interpolation():
    body = parse_text('x = "a\\tb\\"c $${not} \\u00e9"\n')
    assert body[0][2] == ("lit", 'a\tb"c ${not} \u00e9')


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a = {\n  b = \n", 2),
        ('locals {\n  x = "unterminated\n}\n', 2),
        ("block {\n  = 1\n}\n", 2),
    ],
)
def test_syntax_errors_carry_file_and_line(text, line):
    with pytest.raises(HclSyntaxError) as info:
        parse_text(text, "units/x/terragrunt.hcl")
    assert info.value.path == "units/x/terragrunt.hcl"
    assert info.value.line == line
    assert str(info.value).startswith(f"units/x/terragrunt.hcl:{line}")


def test_unbalanced_template_directives_name_the_line():
    with pytest.raises(HclSyntaxError, match="never closed") as info:
        parse_text('a = 1\nx = "%{ if true }y"\n', "f.hcl")
    assert info.value.line == 2
    with pytest.raises(HclSyntaxError, match="without a matching"):
        parse_text("x = <<EOT\n%{ endfor }\nEOT\n", "f.hcl")


# -- HCL as HCL: what Terraform and Terragrunt refuse --------------------------------------------
@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("inputs = { a = 1 }\ninputs = { b = 2 }\n", (1, 2)),  # loaded as {b = 2} before
        ('remote_state {\n  backend = "s3"\n  backend = "local"\n}\n', (2, 3)),  # in any body
        ("locals {\n  a = 1\n}\n\nlocals {\n  b = 2\n}\n", (1, 5)),  # merged before
        ('terraform {\n  source = "a"\n}\nterraform {\n  source = "b"\n}\n', (1, 4)),
        ('remote_state {\n  backend = "s3"\n}\nremote_state {\n  backend = "gcs"\n}\n', (1, 4)),
        ('generate "p" {\n  path = "a"\n}\ngenerate "p" {\n  path = "b"\n}\n', (1, 4)),
    ],
)
def test_a_repeated_attribute_or_single_block_names_the_file_and_both_lines(text, lines):
    with pytest.raises(HclSyntaxError) as caught:
        parse_config(text, "dev/app/terragrunt.hcl")
    first, second = lines
    assert caught.value.path == "dev/app/terragrunt.hcl" and caught.value.line == second
    assert f"dev/app/terragrunt.hcl:{first}" in str(caught.value) and caught.value.exit_code == 2


def test_blocks_terragrunt_repeats_are_accepted():
    text = """
        include "root" {
          path = "a.hcl"
        }
        include "common" {
          path = "b.hcl"
        }
        dependency "vpc" {
          config_path = "../vpc"
        }
        dependency "db" {
          config_path = "../db"
        }
        generate "provider" {
          path = "p.tf"
        }
        generate "backend" {
          path = "b.tf"
        }
        feature "a" {
          default = 1
        }
        feature "b" {
          default = 2
        }
        terraform {
          before_hook "one" {
            commands = ["apply"]
          }
          before_hook "two" {
            commands = ["apply"]
          }
        }
    """
    assert len(parse_config(text, "terragrunt.hcl")) == 9


def test_a_terraform_module_may_repeat_locals_and_terraform_blocks():
    """Terraform allows several locals and terraform blocks in a module: the rule is Terragrunt's."""
    text = "locals {\n  a = 1\n}\nlocals {\n  b = 2\n}\nterraform {\n}\nterraform {\n}\n"
    assert len(parse_text(text, "main.tf")) == 4


def test_a_key_repeated_in_the_json_syntax_is_refused():
    with pytest.raises(HclSyntaxError, match='"inputs" is defined twice'):
        parse_config('{"inputs": {"a": 1}, "inputs": {"b": 2}}', "terragrunt.hcl.json")
    with pytest.raises(HclSyntaxError, match="duplicate locals block"):
        parse_config('{"locals": [{"a": 1}, {"b": 2}]}', "terragrunt.hcl.json")


def test_graph_refuses_a_unit_that_sets_inputs_twice(tmp_path):
    from click.testing import CliRunner

    from refarch.cli import cli
    from tests.helpers import write_tree

    write_tree(tmp_path, {"dev/app/terragrunt.hcl": "inputs = {\n  a = 1\n}\ninputs = {\n  b = 2\n}\n"})
    result = CliRunner().invoke(cli, ["graph", str(tmp_path)])
    assert result.exit_code == 2
    assert 'dev/app/terragrunt.hcl:4: attribute "inputs" redefined' in result.stderr
    assert "dev/app/terragrunt.hcl:1" in result.stderr
