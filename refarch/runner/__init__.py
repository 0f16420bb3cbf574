"""The run layer: the scheduler, the run session (ledger, report) and `run()` over a plan."""
