"""refarch: deploy a multi-account AWS reference architecture from an infrastructure-live repo.

The public API is what `__all__` lists: plain typed functions and frozen dataclasses, loaded
on first use so that `import refarch` (and `refarch --help`) stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from refarch.config import evaluate_unit
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
    from refarch.events import (
        RunEvent,
        RunFinished,
        RunStarted,
        UnitFinished,
        UnitOutput,
        UnitRetried,
        UnitStarted,
    )
    from refarch.jobs.amis import (
        AmiEvent,
        AmiRecord,
        AmisBuildRequest,
        AmisPruneRequest,
        build_amis,
        prune_amis,
        run_amis_build,
        run_amis_prune,
    )
    from refarch.jobs.artifacts import (
        ArtifactEvent,
        ArtifactsBuildRequest,
        ArtifactsReport,
        build_artifacts,
        run_artifacts_build,
    )
    from refarch.jobs.bootstrap import BootstrapEvent, BootstrapRequest, bootstrap, run_bootstrap
    from refarch.jobs.demo import DemoResult, demo
    from refarch.jobs.deploy import DeployEvent, DeployRequest, DeployResult, deploy, run
    from refarch.jobs.dns import DnsImportRequest, DnsImportResult, TerraformLine, run_dns_import
    from refarch.jobs.drift import DriftReport, DriftRequest, drift
    from refarch.jobs.preflight import PreflightReport, PreflightRequest, run_preflight
    from refarch.jobs.recover import Pushed, RecoverRequest, RecoverResult, run_recover
    from refarch.jobs.stacks import generate_stacks
    from refarch.jobs.vpn import VpnClientRequest, VpnRevokeRequest, run_vpn_client, run_vpn_revoke
    from refarch.models import (
        Account,
        Action,
        Dependency,
        Plan,
        PlannedUnit,
        RemoteState,
        Repo,
        RunReport,
        Status,
        Unit,
        UnitReport,
    )
    from refarch.planner import plan
    from refarch.provision.ami_retention import Retention
    from refarch.provision.dns import ZoneImport
    from refarch.provision.record import BootstrapRecord
    from refarch.provision.vpn_pki import ClientProfile, Revocation
    from refarch.repo import load_repo
    from refarch.runner.run import RunOptions
    from refarch.settings import Settings, load_settings

__version__ = "0.1.0"

# name -> the module that defines it
_EXPORTS = {
    "evaluate_unit": "refarch.config",
    **dict.fromkeys(
        (
            "ConfigError",
            "DependencyCycle",
            "DeployEvent",
            "DeployRequest",
            "DeployResult",
            "EvaluationError",
            "HclSyntaxError",
            "MissingDependency",
            "ProcessFailed",
            "RefarchError",
            "UsageError",
            "WrongAccount",
        ),
        "refarch.errors",
    ),
    **dict.fromkeys(
        ("RunEvent", "RunFinished", "RunStarted", "UnitFinished", "UnitOutput", "UnitRetried", "UnitStarted"),
        "refarch.events",
    ),
    **dict.fromkeys(
        (
            "AmiEvent",
            "AmiRecord",
            "AmisBuildRequest",
            "AmisPruneRequest",
            "build_amis",
            "prune_amis",
            "run_amis_build",
            "run_amis_prune",
        ),
        "refarch.jobs.amis",
    ),
    **dict.fromkeys(
        (
            "ArtifactEvent",
            "ArtifactsBuildRequest",
            "ArtifactsReport",
            "build_artifacts",
            "run_artifacts_build",
        ),
        "refarch.jobs.artifacts",
    ),
    **dict.fromkeys(
        ("BootstrapEvent", "BootstrapRequest", "bootstrap", "run_bootstrap"), "refarch.jobs.bootstrap"
    ),
    "DemoResult": "refarch.jobs.demo",
    "demo": "refarch.jobs.demo",
    **dict.fromkeys(("DriftReport", "DriftRequest", "drift"), "refarch.jobs.drift"),
    **dict.fromkeys(("DeployEvent", "DeployRequest", "DeployResult", "deploy", "run"), "refarch.jobs.deploy"),
    **dict.fromkeys(
        ("DnsImportRequest", "DnsImportResult", "TerraformLine", "run_dns_import"), "refarch.jobs.dns"
    ),
    **dict.fromkeys(("PreflightReport", "PreflightRequest", "run_preflight"), "refarch.jobs.preflight"),
    **dict.fromkeys(("Pushed", "RecoverRequest", "RecoverResult", "run_recover"), "refarch.jobs.recover"),
    "generate_stacks": "refarch.jobs.stacks",
    **dict.fromkeys(
        ("VpnClientRequest", "VpnRevokeRequest", "run_vpn_client", "run_vpn_revoke"), "refarch.jobs.vpn"
    ),
    **dict.fromkeys(
        (
            "Account",
            "Action",
            "Dependency",
            "Plan",
            "PlannedUnit",
            "RemoteState",
            "Repo",
            "RunReport",
            "Status",
            "Unit",
            "UnitReport",
        ),
        "refarch.models",
    ),
    "plan": "refarch.planner",
    "Retention": "refarch.provision.ami_retention",
    "ZoneImport": "refarch.provision.dns",
    "BootstrapRecord": "refarch.provision.record",
    **dict.fromkeys(("ClientProfile", "Revocation"), "refarch.provision.vpn_pki"),
    "load_repo": "refarch.repo",
    "RunOptions": "refarch.runner.run",
    "Settings": "refarch.settings",
    "load_settings": "refarch.settings",
}

__all__ = [
    "Account",
    "Action",
    "AmiEvent",
    "AmiRecord",
    "AmisBuildRequest",
    "AmisPruneRequest",
    "ArtifactEvent",
    "ArtifactsBuildRequest",
    "ArtifactsReport",
    "BootstrapEvent",
    "BootstrapRecord",
    "BootstrapRequest",
    "ClientProfile",
    "ConfigError",
    "DemoResult",
    "Dependency",
    "DependencyCycle",
    "DeployEvent",
    "DeployRequest",
    "DeployResult",
    "DnsImportRequest",
    "DnsImportResult",
    "DriftReport",
    "DriftRequest",
    "EvaluationError",
    "HclSyntaxError",
    "MissingDependency",
    "Plan",
    "PlannedUnit",
    "PreflightReport",
    "PreflightRequest",
    "ProcessFailed",
    "Pushed",
    "RecoverRequest",
    "RecoverResult",
    "RefarchError",
    "RemoteState",
    "Repo",
    "Retention",
    "Revocation",
    "RunEvent",
    "RunFinished",
    "RunOptions",
    "RunReport",
    "RunStarted",
    "Settings",
    "Status",
    "TerraformLine",
    "Unit",
    "UnitFinished",
    "UnitOutput",
    "UnitReport",
    "UnitRetried",
    "UnitStarted",
    "UsageError",
    "VpnClientRequest",
    "VpnRevokeRequest",
    "WrongAccount",
    "ZoneImport",
    "__version__",
    "bootstrap",
    "build_amis",
    "build_artifacts",
    "demo",
    "deploy",
    "drift",
    "evaluate_unit",
    "generate_stacks",
    "load_repo",
    "load_settings",
    "plan",
    "prune_amis",
    "run",
    "run_amis_build",
    "run_amis_prune",
    "run_artifacts_build",
    "run_bootstrap",
    "run_dns_import",
    "run_preflight",
    "run_recover",
    "run_vpn_client",
    "run_vpn_revoke",
]


def __getattr__(name: str) -> Any:
    """Load a public name on first use (PEP 562)."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'refarch' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
