"""No input may produce a Python traceback: mangled real-world configs fail as RefarchError."""

import random
import shutil
from pathlib import Path

import pytest

from refarch import load_repo, plan
from refarch.errors import RefarchError

CORPUS = Path(__file__).parents[1] / "fixtures" / "realworld"
SNIPPETS = [
    '"',
    "{",
    "}",
    "${",
    "%{",
    "(",
    ")",
    "[",
    "]",
    "=",
    ",",
    "...",
    "<<EOT\n",
    "\n",
    "local.",
    "dependency.",
    "include.",
    "find_in_parent_folders(",
    "try(",
    "!",
    "-",
    "null",
    "true",
    "1e999",
    "\\u",
    "~}",
    "for x in",
    "if",
    ":",
    "=>",
    "#",
    "/*",
]


def mangle(text: str, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 3)):
        pos = rng.randint(0, len(text))
        choice = rng.random()
        if choice < 0.4:
            text = text[:pos] + rng.choice(SNIPPETS) + text[pos:]
        elif choice < 0.7:
            text = text[:pos] + text[pos + rng.randint(1, 12) :]
        else:
            text = text[:pos]
    return text


CASES = sorted(p for p in CORPUS.iterdir() if p.is_dir() and not p.name.startswith("_"))


@pytest.mark.parametrize("seed", range(40))
def test_mangled_configs_fail_cleanly(seed, tmp_path):
    rng = random.Random(seed)
    case = CASES[seed % len(CASES)]
    work = tmp_path / case.name
    shutil.copytree(case, work)
    files = sorted(work.rglob("*.hcl"))
    for _ in range(3):
        target = rng.choice(files)
        target.write_text(mangle(target.read_text(), rng))
    try:
        plan(load_repo(work, cache=False, env={}))
    except RefarchError as exc:
        assert str(exc).strip()
