"""The pipeline as GitHub Actions workflows: plan pull requests; plan and apply the branch;
check each account for drift on `[ci] drift_schedule`."""

from __future__ import annotations

from typing import Any

from refarch.ci.emit import to_yaml
from refarch.ci.model import CACHE, PLANS, REPORTS, TOOLS, CiDriftJob, CiJob, CiPipeline, shell

GITHUB_PLAN_FILE = ".github/workflows/refarch-plan.yml"
GITHUB_APPLY_FILE = ".github/workflows/refarch-apply.yml"
GITHUB_DRIFT_FILE = ".github/workflows/refarch-drift.yml"
# Third-party actions pinned by commit (a tag can be moved; these workflows hold id-token: write).
ACTIONS = {
    "checkout": "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1",  # v7.0.1
    "setup-python": "actions/setup-python@5fda3b95a4ea91299a34e894583c3862153e4b97",  # v7.0.0
    "cache": "actions/cache@27d5ce7f107fe9357f9df03efb73ab90386fccae",  # v5.0.5
    "upload-artifact": "actions/upload-artifact@bbbca2ddaa5d8feaa63e36b76fdaad77386f024f",  # v7.0.0
    "download-artifact": "actions/download-artifact@3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c",  # v8.0.1
    # v6.2.3
    "aws-credentials": "aws-actions/configure-aws-credentials@e6de054238d6b7531b4efff3b6587d9aade6a06c",
}
# Pushes plan what changed since the last successful deployment the shared ledger records;
# a scheduled or manual run plans everything.
ONLY_CHANGED = 'set --; if [ "$GITHUB_EVENT_NAME" = push ]; then set -- --changed-since deployed; fi'
# The pull request's plan summary as one comment, updated in place on each push (gh is on
# GitHub's runners; the marker finds the comment again).
COMMENT = """test -f refarch-plans/summary.md || exit 0
{ echo '<!-- refarch-plan -->'; head -c 60000 refarch-plans/summary.md; } > "$RUNNER_TEMP/comment.md"
id="$(gh api "repos/$GITHUB_REPOSITORY/issues/$PR_NUMBER/comments" --paginate \\
  --jq '.[] | select(.body | startswith("<!-- refarch-plan -->")) | .id' | head -n 1)"
body="body=@$RUNNER_TEMP/comment.md"
if [ -n "$id" ]; then
  gh api --method PATCH "repos/$GITHUB_REPOSITORY/issues/comments/$id" -F "$body" >/dev/null
else
  gh api --method POST "repos/$GITHUB_REPOSITORY/issues/$PR_NUMBER/comments" -F "$body" >/dev/null
fi"""


def _setup(pipeline: CiPipeline, session: str, role_variable: str, lock_files: str) -> list[dict[str, Any]]:
    o = pipeline.options
    prefix = f"refarch-{o.python_version}-{o.terraform_version}-"
    install = "\n".join(
        [
            f'mkdir -p {TOOLS}/bin "$PIP_CACHE_DIR" "$TF_PLUGIN_CACHE_DIR"',
            *o.install_lines(),
            *o.terraform_lines(),
            f'echo "$PWD/{TOOLS}/bin" >> "$GITHUB_PATH"',
        ]
    )
    return [
        {"uses": ACTIONS["setup-python"], "with": {"python-version": o.python_version}},
        {
            "uses": ACTIONS["cache"],
            "with": {
                "path": f"{CACHE}/pip\n{CACHE}/plugins\n",
                "key": f"{prefix}${{{{ hashFiles('{lock_files}') }}}}",
                "restore-keys": f"{prefix}\n",
            },
        },
        {"name": "install refarch and Terraform (checked against pinned SHA256 sums)", "run": install},
        {
            # GitHub's OIDC token for the base role; refarch assumes each account's role from it
            "uses": ACTIONS["aws-credentials"],
            "with": {
                "role-to-assume": f"${{{{ vars.{role_variable} }}}}",
                "role-session-name": session,
                "aws-region": o.region,
            },
        },
    ]


def _env() -> dict[str, str]:
    return {
        "PIP_CACHE_DIR": f"${{{{ github.workspace }}}}/{CACHE}/pip",
        "TF_PLUGIN_CACHE_DIR": f"${{{{ github.workspace }}}}/{CACHE}/plugins",
    }


def _commit_note(pipeline: CiPipeline, job: CiJob) -> str:
    """The commit the plans were made at, in the plans' folder (never empty: the artifact exists
    even when nothing changed)."""
    return f'echo "$GITHUB_SHA" > {pipeline.plans_of(job)}/commit.txt'


def _plan_job(pipeline: CiPipeline, job: CiJob, lock_files: str) -> dict[str, Any]:
    o = pipeline.options
    return {
        "name": f"plan {', '.join(job.accounts)}",
        "runs-on": "ubuntu-latest",
        "timeout-minutes": 60,
        **({"needs": list(job.needs)} if job.needs else {}),
        "env": {**_env(), **pipeline.plan_env},
        "steps": [
            # the whole history: a unit's module changed since its last deployment is found by git
            {"uses": ACTIONS["checkout"], "with": {"fetch-depth": 0}},
            *_setup(
                pipeline,
                f"refarch-${{{{ github.run_id }}}}-{job.plan_id[:40]}",
                o.plan_role_variable,
                lock_files,
            ),
            {
                "name": f"plan {', '.join(job.accounts)}",
                "run": "\n".join(
                    [
                        f"mkdir -p {pipeline.plans_of(job)}",
                        _commit_note(pipeline, job),
                        ONLY_CHANGED,
                        shell(pipeline.plan_argv(job)) + ' "$@"',
                    ]
                ),
            },
            {
                # read by the apply job only; the binary plans can hold secrets
                "uses": ACTIONS["upload-artifact"],
                "with": {
                    "name": f"refarch-{job.plan_id}",
                    "path": f"{pipeline.plans_of(job)}/\n",
                    "include-hidden-files": True,
                    "retention-days": 7,
                    "if-no-files-found": "ignore",
                },
            },
        ],
    }


def _apply_job(pipeline: CiPipeline, job: CiJob, lock_files: str) -> dict[str, Any]:
    o = pipeline.options
    return {
        "name": job.title,
        "runs-on": "ubuntu-latest",
        "timeout-minutes": 120,
        "needs": [job.plan_id],
        # required reviewers are set on the environment (Settings > Environments)
        "environment": job.environment,
        # one apply per account at a time across runs; an apply is never cancelled
        "concurrency": {"group": f"refarch-apply-{job.environment}", "cancel-in-progress": False},
        "env": _env(),
        "steps": [
            {"uses": ACTIONS["checkout"]},
            *_setup(pipeline, f"refarch-${{{{ github.run_id }}}}-{job.id[:40]}", o.role_variable, lock_files),
            {
                "uses": ACTIONS["download-artifact"],
                "with": {"name": f"refarch-{job.plan_id}", "path": f"{pipeline.plans_of(job)}/"},
            },
            {"name": f"apply {', '.join(job.accounts)}", "run": shell(pipeline.apply_argv(job))},
            {
                "name": "keep the report and unit logs",
                "if": "always()",
                "uses": ACTIONS["upload-artifact"],
                "with": {
                    "name": f"refarch-{job.id}",
                    "path": f"{REPORTS}/{job.id}.json\n{pipeline.runs_dir}\n",
                    "include-hidden-files": True,
                    "if-no-files-found": "ignore",
                },
            },
        ],
    }


def _drift_check(pipeline: CiPipeline, job: CiDriftJob) -> str:
    """`refarch drift` writes its summary.md into the job summary itself; exit 2 (drift) and 1
    (could not tell) fail the job with an annotation that says which, and an error before any
    verdict still leaves a line in the job summary."""
    where = f"{job.folder}/summary.md"
    return "\n".join(
        [
            "code=0",
            shell(pipeline.drift_argv(job)) + " || code=$?",
            'if [ "$code" = 2 ]; then',
            f'  echo "::error title=refarch drift::drift: {job.account} differs from the code (job summary)"',
            'elif [ "$code" != 0 ]; then',
            f'  echo "::error title=refarch drift::could not tell if {job.account} drifted (exit $code)"',
            f'  test -f {where} || echo "### refarch drift: could not tell (exit $code), see the log" '
            '>> "$GITHUB_STEP_SUMMARY"',
            "fi",
            'exit "$code"',
        ]
    )


def _drift_job(pipeline: CiPipeline, job: CiDriftJob, lock_files: str) -> dict[str, Any]:
    o = pipeline.options
    return {
        "name": f"drift {job.account}",
        "runs-on": "ubuntu-latest",
        "timeout-minutes": 60,
        # read-only: the plan role, no state locks
        "env": {**_env(), **pipeline.plan_env},
        "steps": [
            {"uses": ACTIONS["checkout"]},
            *_setup(
                pipeline, f"refarch-${{{{ github.run_id }}}}-{job.id[:40]}", o.plan_role_variable, lock_files
            ),
            {"name": f"check {job.account} for drift", "run": _drift_check(pipeline, job)},
            {
                "name": "keep drift.json and summary.md",
                "if": "always()",
                "uses": ACTIONS["upload-artifact"],
                "with": {
                    "name": f"refarch-{job.id}",
                    "path": f"{job.folder}/drift.json\n{job.folder}/summary.md\n",
                    "retention-days": 30,
                    "if-no-files-found": "ignore",
                },
            },
        ],
    }


def _drift_workflow(pipeline: CiPipeline, lock_files: str) -> dict[str, Any]:
    """On `[ci] drift_schedule` (and by hand), one job per account: `refarch drift` of its
    units, read-only; a job fails when its account drifted or could not be checked."""
    return {
        "name": "refarch drift",
        "on": {"schedule": [{"cron": pipeline.options.drift_schedule}], "workflow_dispatch": {}},
        "permissions": {"id-token": "write", "contents": "read"},
        # one check at a time; a run is never cancelled halfway (its ledger run would stay open)
        "concurrency": {"group": "refarch-drift", "cancel-in-progress": False},
        "jobs": {job.id: _drift_job(pipeline, job, lock_files) for job in pipeline.drift},
    }


def github_workflows(pipeline: CiPipeline) -> dict[str, str]:
    """Two workflows: plan what a pull request changes (one comment, updated in place), and on
    the branch plan then apply each slice, exactly the plans saved; with `[ci] drift_schedule`
    a third, the scheduled drift check of each account."""
    o = pipeline.options
    lock_files = f"{pipeline.directory}/**/.terraform.lock.hcl".removeprefix("./")
    permissions = {"id-token": "write", "contents": "read"}
    plan_doc: dict[str, Any] = {
        "name": "refarch plan",
        "on": {"pull_request": {"branches": [o.branch]}},
        "permissions": {**permissions, "pull-requests": "write"},
        # a newer push cancels the older plan: plans take no state locks, so none is stranded
        "concurrency": {"group": "refarch-plan-${{ github.ref }}", "cancel-in-progress": True},
        "jobs": {
            "plan": {
                "name": "plan what changed",
                "runs-on": "ubuntu-latest",
                "timeout-minutes": 60,
                "env": {**_env(), **pipeline.plan_env},
                "steps": [
                    {"uses": ACTIONS["checkout"], "with": {"fetch-depth": 0}},
                    *_setup(pipeline, "refarch-plan-${{ github.run_id }}", o.plan_role_variable, lock_files),
                    {
                        "name": "plan-all of what changed",
                        "env": {"BASE_REF": "${{ github.base_ref }}"},
                        "run": shell(pipeline.review_argv("origin/BASE")).replace(
                            "origin/BASE", '"origin/$BASE_REF"'
                        ),
                    },
                    {
                        "name": "post the plan summary",
                        "if": "always()",
                        "env": {
                            "GH_TOKEN": "${{ github.token }}",
                            "PR_NUMBER": "${{ github.event.pull_request.number }}",
                        },
                        "run": f"if [ -f {PLANS}/summary.md ]; then "
                        f'cat {PLANS}/summary.md >> "$GITHUB_STEP_SUMMARY"; fi\n{COMMENT}',
                    },
                    {
                        "name": "keep the report and the plan summaries",
                        "if": "always()",
                        "uses": ACTIONS["upload-artifact"],
                        "with": {
                            "name": "refarch-plan",
                            "path": f"{REPORTS}/plan.json\n{PLANS}/\n!{PLANS}/*.tfplan\n"
                            f"{pipeline.runs_dir}\n",
                            "include-hidden-files": True,
                            "if-no-files-found": "ignore",
                        },
                    },
                ],
            }
        },
    }
    jobs: dict[str, Any] = {}
    for job in pipeline.jobs:
        jobs[job.plan_id] = _plan_job(pipeline, job, lock_files)
        jobs[job.id] = _apply_job(pipeline, job, lock_files)
    apply_doc: dict[str, Any] = {
        "name": "refarch apply",
        "on": {"push": {"branches": [o.branch]}, "workflow_dispatch": {}},
        "permissions": permissions,
        "jobs": jobs,
    }
    files = {
        GITHUB_PLAN_FILE: to_yaml(plan_doc, "github", pipeline.directory),
        GITHUB_APPLY_FILE: to_yaml(apply_doc, "github", pipeline.directory),
    }
    if pipeline.drift:
        files[GITHUB_DRIFT_FILE] = to_yaml(
            _drift_workflow(pipeline, lock_files), "github", pipeline.directory
        )
    return files
