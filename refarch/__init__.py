"""refarch: deploy a multi-account AWS reference architecture from an infrastructure-live repo.

The public API is what `__all__` lists; everything else is internal.
"""

# callable modules: refarch.plan(repo), refarch.run(plan), refarch.bootstrap(repo, settings)
from refarch import bootstrap, demo, plan, run
from refarch.config import evaluate_unit
from refarch.demo import DemoResult
from refarch.errors import (
    ConfigError,
    DependencyCycle,
    EvaluationError,
    HclSyntaxError,
    MissingDependency,
    ProcessFailed,
    RefarchError,
    UsageError,
    WrongAccount,
)
from refarch.models import Account, Dependency, Plan, PlannedUnit, RemoteState, Repo, Unit
from refarch.provision.amis import AmiRecord, build_amis
from refarch.provision.record import BootstrapRecord
from refarch.repo import load_repo
from refarch.run.report import RunReport, UnitReport
from refarch.run.runner import RunEvent
from refarch.settings import Settings, load_settings
from refarch.stacks import generate_stacks

__version__ = "0.1.0"

__all__ = [
    "Account",
    "AmiRecord",
    "BootstrapRecord",
    "ConfigError",
    "DemoResult",
    "Dependency",
    "DependencyCycle",
    "EvaluationError",
    "HclSyntaxError",
    "MissingDependency",
    "Plan",
    "PlannedUnit",
    "ProcessFailed",
    "RefarchError",
    "RemoteState",
    "Repo",
    "RunEvent",
    "RunReport",
    "Settings",
    "Unit",
    "UnitReport",
    "UsageError",
    "WrongAccount",
    "__version__",
    "bootstrap",
    "build_amis",
    "demo",
    "evaluate_unit",
    "generate_stacks",
    "load_repo",
    "load_settings",
    "plan",
    "run",
]
