"""The application: one job per verb, each taking a typed request and callbacks and returning
a typed result, which the CLI only parses into and renders from (so the library and the CLI
cannot drift). deploy: apply / plan-all / destroy / output; bootstrap, preflight, recover, amis,
artifacts, vpn, dns; ci, inspect_repo (graph, plan, validate, config), audit (history, export),
new_repo, stack_verbs, drift, demo_run. notices: the notes several jobs send before their
result; embedded_aws and emulator_fixes: the moto server the demo and the tests run against."""
