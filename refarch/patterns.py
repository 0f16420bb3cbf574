"""The only google-re2 importer: regular expressions that come from configuration, in linear time.

Terraform's regex functions and Terragrunt's error patterns are Go regular expressions, which
is RE2's syntax, and RE2 matches in time linear in the text: `(a+)+b` over a long line of
"a"s, which Python's backtracking `re` would take years over, answers at once. So every
pattern a user writes (errors blocks, retryable_errors, `[retry]` and `[preflight]` in
refarch.toml, regex() / regexall() / replace()) is compiled here; refarch's own constant
patterns stay on `re`. RE2 refuses what it cannot match in linear time (backreferences,
look-around), as Go does, and a pattern whose program exceeds MAX_PROGRAM_BYTES.
"""

from __future__ import annotations

from typing import Any

import re2  # google-re2 ships no type information (pyproject: ignore_missing_imports)

MAX_PROGRAM_BYTES = 8 << 20  # RE2's own default per pattern: a{1000}{1000} is refused, not built


class PatternError(ValueError):
    """A pattern RE2 cannot compile (invalid, or a construct it cannot match in linear time)."""


Pattern = Any  # re2's compiled pattern: search, match, finditer, sub, groups, groupindex as re's


def compile_pattern(pattern: str, *, dot_matches_newline: bool = False) -> Pattern:
    """`pattern` compiled by RE2 (cached by RE2's module, 128 patterns)."""
    options = re2.Options()
    options.max_mem = MAX_PROGRAM_BYTES
    options.dot_nl = dot_matches_newline
    options.log_errors = False  # RE2 would print the error to stderr as well
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else "not a valid regular expression"
        text = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
        raise PatternError(text) from None
