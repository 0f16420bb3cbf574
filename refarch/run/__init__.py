"""Running the tools: processes, engines, retries, the scheduler, the ledger and the report."""
