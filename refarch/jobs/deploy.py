"""run() with refarch's own policies: the public `refarch.run`, what `refarch apply` calls.

The run layer knows nothing of bootstrap; here the data-store passwords that bootstrap keeps
in each account reach the units whose module declares them, as `TF_VAR_<name>`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from refarch.aws import AwsSessions
from refarch.engines import Engine
from refarch.events import RunEventCallback
from refarch.exec.process import Interrupt
from refarch.models import Action, Plan, RunReport
from refarch.provision.passwords import password_provider
from refarch.runner.run import RunOptions
from refarch.runner.run import run as run_plan
from refarch.runner.unit import ExtraEnv, UnitCredentials
from refarch.settings import Settings


def run(
    plan: Plan,
    action: Action | str | None = None,
    settings: Settings | None = None,
    *,
    options: RunOptions | None = None,
    engine: Engine | None = None,
    on_event: RunEventCallback | None = None,
    sessions: AwsSessions | None = None,
    credentials: UnitCredentials | None = None,
    extra_env: ExtraEnv | None = None,
    secrets: Iterable[str] = (),
    sleep: Callable[[float], None] | None = None,
    interrupt: Interrupt | None = None,
    base_env: Mapping[str, str] | None = None,
) -> RunReport:
    """Run `action` on every unit of `plan` (see `refarch.runner.run.run`), each unit with
    its account's credentials and, unless `extra_env` is given, bootstrap's passwords."""
    settings = settings or plan.repo.settings
    if credentials is None and sessions is None:
        sessions = AwsSessions(settings)
    if extra_env is None and sessions is not None:
        extra_env = password_provider(replace(plan.repo, settings=settings), sessions)
    return run_plan(
        plan,
        action,
        settings,
        options=options or RunOptions(),
        engine=engine,
        on_event=on_event,
        sessions=sessions,
        credentials=credentials,
        extra_env=extra_env,
        secrets=secrets,
        sleep=sleep,
        interrupt=interrupt,
        base_env=base_env,
    )
