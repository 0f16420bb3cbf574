"""Parsing HCL into refarch's tuple AST."""

import pytest

from refarch.config.hcl import parse_text
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
