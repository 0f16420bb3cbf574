"""Decoders and regular expressions from configuration are bounded: a YAML alias bomb, deep
nesting, huge text and backtracking patterns are refused or answered at once, never hung on."""

import time

import pytest

from refarch import load_repo
from refarch.config.functions import MAX_DECODE_DEPTH, FunctionError, call_pure
from refarch.errors import ConfigError
from tests.helpers import write_tree

# 9 aliases a level, 9 levels: 9**9 (387 million) strings from 350 bytes
BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8)
)


@pytest.mark.parametrize(
    ("function", "text", "message"),
    [
        ("yamldecode", BOMB, "expands to more than 1000000 values (YAML aliases expanded)"),
        ("yamldecode", "&a [*a]", "a value contains itself"),
        ("yamldecode", "[" * 5000 + "]" * 5000, f"nested more than {MAX_DECODE_DEPTH} deep"),
        ("jsondecode", "[" * 100_000 + "]" * 100_000, f"nested more than {MAX_DECODE_DEPTH} deep"),
        ("jsondecode", "[" * 200 + "]" * 200, f"nested more than {MAX_DECODE_DEPTH} deep"),
        ("jsondecode", '"' + "x" * (9 << 20) + '"', "at most 8388608 are decoded"),
        ("csvdecode", "a\n" + "x" * 200_000, "not valid CSV: field larger than field limit"),
    ],
)
def test_decoders_refuse_what_would_hang_or_exhaust_memory(function, text, message):
    started = time.monotonic()
    with pytest.raises(FunctionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call_pure(function, [text])
    assert time.monotonic() - started < 2


def test_decoders_still_decode_ordinary_documents():
    assert call_pure("yamldecode", ["base: &b {x: 1}\nother:\n  <<: *b\n  y: [1, 2]\n"]) == {
        "base": {"x": 1},
        "other": {"x": 1, "y": [1, 2]},
    }
    assert call_pure("jsondecode", ['{"a": [1, {"b": null}]}']) == {"a": [1, {"b": None}]}
    assert call_pure("csvdecode", ["a,b\n1,2\n"]) == [{"a": "1", "b": "2"}]


def test_a_yaml_bomb_in_a_unit_is_a_config_error_naming_file_and_line(tmp_path):
    write_tree(
        tmp_path,
        {
            "dev/app/bomb.yaml": BOMB,
            "dev/app/terragrunt.hcl": 'locals {\n  x = 1\n  data = yamldecode(file("bomb.yaml"))\n}\n',
        },
    )
    with pytest.raises(ConfigError) as caught:
        load_repo(tmp_path, cache=False)
    assert caught.value.path == "dev/app/terragrunt.hcl" and caught.value.line == 3
    assert "yamldecode()" in str(caught.value) and "YAML aliases" in str(caught.value)


def test_regex_functions_run_in_linear_time_with_go_syntax():
    started = time.monotonic()
    assert call_pure("regexall", ["(a+)+b", "a" * 100_000 + "c"]) == []
    assert call_pure("replace", ["a" * 50_000 + "c", "/(a+)+b/", "x"]) == "a" * 50_000 + "c"
    assert time.monotonic() - started < 2
    assert call_pure("regex", ["(?P<k>[a-z]+)=(?P<v>\\d+)", "x=1"]) == {"k": "x", "v": "1"}
    with pytest.raises(FunctionError, match="invalid escape sequence"):  # Go has no backreferences
        call_pure("regex", [r"(a)\1", "aa"])


def test_an_errors_pattern_re2_cannot_compile_is_a_config_error(tmp_path):
    write_tree(
        tmp_path,
        {
            "dev/app/terragrunt.hcl": """
                errors {
                  retry "lookahead" {
                    retryable_errors   = ["(?=throttl)"]
                    max_attempts       = 2
                    sleep_interval_sec = 1
                  }
                }
            """
        },
    )
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        load_repo(tmp_path, cache=False)
