"""Running the tools: processes, engines, retries, the scheduler, the ledger and the report.

`refarch.run(plan, action, settings, on_event=...)` calls `refarch.run.runner.run`.
"""

from collections.abc import Callable
from typing import Any

from refarch._callable import make_callable


def _run() -> Callable[..., Any]:
    from refarch.run.runner import run  # noqa: PLC0415 - loaded on first call, not on import

    return run


make_callable(__name__, _run)
