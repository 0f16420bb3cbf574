"""Reading a live repo: parse HCL, evaluate Terragrunt configuration, discover units."""

from refarch.config.discover import evaluate_unit, find_unit_files, load_repo

__all__ = ["evaluate_unit", "find_unit_files", "load_repo"]
