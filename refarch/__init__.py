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
    from refarch.jobs.audit import (
        AuditExportRequest,
        AuditExportResult,
        HistoryRequest,
        HistoryResult,
        audit_export,
        run_history,
    )
    from refarch.jobs.bootstrap import BootstrapEvent, BootstrapRequest, bootstrap, run_bootstrap
    from refarch.jobs.ci import CiRequest, CiResult, emit_ci
    from refarch.jobs.demo import DemoResult, demo
    from refarch.jobs.demo_real import RealDemoResult
    from refarch.jobs.demo_run import DemoRequest, run_demo
    from refarch.jobs.deploy import DeployEvent, DeployRequest, DeployResult, deploy, run
    from refarch.jobs.dns import DnsImportRequest, DnsImportResult, TerraformLine, run_dns_import
    from refarch.jobs.drift import DriftEvent, DriftReport, DriftRequest, drift
    from refarch.jobs.inspect_repo import (
        ConfigRequest,
        ConfigResult,
        GraphRequest,
        GraphResult,
        PlanRequest,
        PlanResult,
        ValidateRequest,
        ValidateResult,
        plan_repo,
        repo_graph,
        show_config,
        validate_live,
    )
    from refarch.jobs.new_repo import NewRequest, NewResult, new_repo
    from refarch.jobs.preflight import PreflightReport, PreflightRequest, run_preflight
    from refarch.jobs.recover import Pushed, RecoverRequest, RecoverResult, run_recover
    from refarch.jobs.stack_verbs import (
        StackCleanResult,
        StackOutputRequest,
        StackOutputResult,
        StackRequest,
        stack_clean,
        stack_generate,
        stack_output,
    )
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
        (
            "AuditExportRequest",
            "AuditExportResult",
            "HistoryRequest",
            "HistoryResult",
            "audit_export",
            "run_history",
        ),
        "refarch.jobs.audit",
    ),
    **dict.fromkeys(
        ("BootstrapEvent", "BootstrapRequest", "bootstrap", "run_bootstrap"), "refarch.jobs.bootstrap"
    ),
    **dict.fromkeys(("CiRequest", "CiResult", "emit_ci"), "refarch.jobs.ci"),
    "DemoResult": "refarch.jobs.demo",
    "demo": "refarch.jobs.demo",
    "RealDemoResult": "refarch.jobs.demo_real",
    **dict.fromkeys(("DemoRequest", "run_demo"), "refarch.jobs.demo_run"),
    **dict.fromkeys(("DriftEvent", "DriftReport", "DriftRequest", "drift"), "refarch.jobs.drift"),
    **dict.fromkeys(
        (
            "ConfigRequest",
            "ConfigResult",
            "GraphRequest",
            "GraphResult",
            "PlanRequest",
            "PlanResult",
            "ValidateRequest",
            "ValidateResult",
            "plan_repo",
            "repo_graph",
            "show_config",
            "validate_live",
        ),
        "refarch.jobs.inspect_repo",
    ),
    **dict.fromkeys(("NewRequest", "NewResult", "new_repo"), "refarch.jobs.new_repo"),
    **dict.fromkeys(
        (
            "StackCleanResult",
            "StackOutputRequest",
            "StackOutputResult",
            "StackRequest",
            "stack_clean",
            "stack_generate",
            "stack_output",
        ),
        "refarch.jobs.stack_verbs",
    ),
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
    "AuditExportRequest",
    "AuditExportResult",
    "BootstrapEvent",
    "BootstrapRecord",
    "BootstrapRequest",
    "CiRequest",
    "CiResult",
    "ClientProfile",
    "ConfigError",
    "ConfigRequest",
    "ConfigResult",
    "DemoRequest",
    "DemoResult",
    "Dependency",
    "DependencyCycle",
    "DeployEvent",
    "DeployRequest",
    "DeployResult",
    "DnsImportRequest",
    "DnsImportResult",
    "DriftEvent",
    "DriftReport",
    "DriftRequest",
    "EvaluationError",
    "GraphRequest",
    "GraphResult",
    "HclSyntaxError",
    "HistoryRequest",
    "HistoryResult",
    "MissingDependency",
    "NewRequest",
    "NewResult",
    "Plan",
    "PlanRequest",
    "PlanResult",
    "PlannedUnit",
    "PreflightReport",
    "PreflightRequest",
    "ProcessFailed",
    "Pushed",
    "RealDemoResult",
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
    "StackCleanResult",
    "StackOutputRequest",
    "StackOutputResult",
    "StackRequest",
    "Status",
    "TerraformLine",
    "Unit",
    "UnitFinished",
    "UnitOutput",
    "UnitReport",
    "UnitRetried",
    "UnitStarted",
    "UsageError",
    "ValidateRequest",
    "ValidateResult",
    "VpnClientRequest",
    "VpnRevokeRequest",
    "WrongAccount",
    "ZoneImport",
    "__version__",
    "audit_export",
    "bootstrap",
    "build_amis",
    "build_artifacts",
    "demo",
    "deploy",
    "drift",
    "emit_ci",
    "evaluate_unit",
    "generate_stacks",
    "load_repo",
    "load_settings",
    "new_repo",
    "plan",
    "plan_repo",
    "prune_amis",
    "repo_graph",
    "run",
    "run_amis_build",
    "run_amis_prune",
    "run_artifacts_build",
    "run_bootstrap",
    "run_demo",
    "run_dns_import",
    "run_history",
    "run_preflight",
    "run_recover",
    "run_vpn_client",
    "run_vpn_revoke",
    "show_config",
    "stack_clean",
    "stack_generate",
    "stack_output",
    "validate_live",
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
