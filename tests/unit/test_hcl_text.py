"""Writing Python values as HCL: the template filter (fmt-aligned) and backend files (inline)."""

import pytest

from refarch.errors import ConfigError
from refarch.hcl_text import hcl_value


def test_fmt_aligned_values_for_generated_files() -> None:
    assert hcl_value("a ${b} %{c}") == '"a $${b} %%{c}"'
    assert hcl_value([1, True, None, "x"]) == '[1, true, null, "x"]'
    assert hcl_value({"a": 1, "long-key": {"x": "y"}, "bb": 2}) == (
        '{\n  a = 1\n  "long-key" = {\n    x = "y"\n  }\n  bb = 2\n}'
    )


def test_inline_values_escape_interpolation() -> None:
    assert hcl_value('a${b}%{c}"d', inline=True) == '"a$${b}%%{c}\\"d"'
    assert hcl_value({"s3": "x", "odd key": [1, True, None]}, inline=True) == (
        '{s3 = "x", "odd key" = [1, true, null]}'
    )


def test_a_value_hcl_cannot_hold_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot write a set"):
        hcl_value({1, 2})
