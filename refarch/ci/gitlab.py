"""The pipeline as one .gitlab-ci.yml: a merge request plan, then plan and apply per account;
with `[ci] drift_schedule`, a drift job per account in scheduled pipelines."""

from __future__ import annotations

from typing import Any

from refarch.ci.emit import to_yaml
from refarch.ci.model import CACHE, PLANS, REPORTS, TOOLS, CiDriftJob, CiJob, CiPipeline, shell

GITLAB_FILE = ".gitlab-ci.yml"

# GitLab's OIDC token for the base role, as an AWS profile: refarch reads AWS_PROFILE and keeps
# it from the tools, which get only each account's own credentials. Skipped on runners that
# bring their own credentials (no role ARN or no token).
OIDC = """if [ -n "${REFARCH_ROLE_ARN:-}" ] && [ -n "${AWS_ID_TOKEN:-}" ]; then
  REFARCH_TOKEN_FILE="$(mktemp)" && printf '%s' "$AWS_ID_TOKEN" > "$REFARCH_TOKEN_FILE"
  export AWS_CONFIG_FILE="$(mktemp)"
  printf '[profile refarch-ci]\\nrole_arn = %s\\nweb_identity_token_file = %s\\n' \\
    "$REFARCH_ROLE_ARN" "$REFARCH_TOKEN_FILE" > "$AWS_CONFIG_FILE"
  printf 'role_session_name = refarch-%s-%s\\n' \\
    "$CI_PIPELINE_ID" "$CI_JOB_ID" >> "$AWS_CONFIG_FILE"
  export AWS_PROFILE=refarch-ci
fi"""
# Pushes plan what changed since the last successful deployment the shared ledger records;
# a scheduled, manual (web) or API pipeline plans everything.
ONLY_CHANGED = 'set --; if [ "$CI_PIPELINE_SOURCE" = push ]; then set -- --changed-since deployed; fi'
# The merge request's plan summary as one note, updated in place on each push (needs a
# project access token with `api` scope in REFARCH_GITLAB_TOKEN; skipped without one).
COMMENT = """if [ -n "${REFARCH_GITLAB_TOKEN:-}" ] && [ -f refarch-plans/summary.md ]; then
python - <<'PY'
import json, os, urllib.request as web
env = os.environ
api = "{}/projects/{}/merge_requests/{}/notes".format(
    env["CI_API_V4_URL"], env["CI_PROJECT_ID"], env["CI_MERGE_REQUEST_IID"])
head = {"PRIVATE-TOKEN": env["REFARCH_GITLAB_TOKEN"], "Content-Type": "application/json"}
mark = "<!-- refarch-plan -->"
with open("refarch-plans/summary.md", encoding="utf-8") as text:
    body = json.dumps({"body": mark + "\\n" + text.read()[:60000]}).encode()
mine, page = [], 1
while not mine:  # every page, oldest first: the note made on the first push
    query = "?per_page=100&sort=asc&order_by=created_at&page={}".format(page)
    notes = json.load(web.urlopen(web.Request(api + query, headers=head)))
    mine = [n["id"] for n in notes if n.get("body", "").startswith(mark)]
    if len(notes) < 100:
        break
    page += 1
url, method = ("{}/{}".format(api, mine[0]), "PUT") if mine else (api, "POST")
web.urlopen(web.Request(url, data=body, headers=head, method=method))
PY
fi"""


# `refarch drift` exits 2 on drift, 1 when it could not tell: either fails the job, saying which.
DRIFT_CHECK = """code=0
{argv} || code=$?
if [ "$code" = 2 ]; then echo "drift: {account} differs from the code (summary.md below)"; fi
if [ "$code" != 0 ] && [ "$code" != 2 ]; then echo "could not tell whether {account} drifted (exit $code)"; fi
exit "$code"
"""


def _on_branch(pipeline: CiPipeline, *, manual: bool = False) -> list[dict[str, Any]]:
    condition = (
        f'$CI_COMMIT_BRANCH == "{pipeline.options.branch}" && $CI_PIPELINE_SOURCE != "merge_request_event"'
    )
    if pipeline.drift:  # the team's pipeline schedule runs the drift jobs only, never an apply
        condition += ' && $CI_PIPELINE_SOURCE != "schedule"'
    rule: dict[str, Any] = {"if": condition}
    if manual:
        rule["when"] = "manual"  # in rules: blocks the pipeline until someone runs it
    return [rule]


def _commit_note(pipeline: CiPipeline, job: CiJob) -> str:
    """The commit the plans were made at, in the plans' folder (never empty: the artifact exists
    even when nothing changed)."""
    return f'echo "$CI_COMMIT_SHA" > {pipeline.plans_of(job)}/commit.txt'


def _plan_job(pipeline: CiPipeline, job: CiJob) -> dict[str, Any]:
    o = pipeline.options
    return {
        "extends": ".refarch",
        "stage": "deploy",
        # after the applies of the accounts it depends on: their outputs are real, never mocks
        "needs": [{"job": need, "artifacts": False} for need in job.needs],
        "rules": _on_branch(pipeline),
        # the whole history: a unit's module changed since its last deployment is found by git
        "variables": {"GIT_DEPTH": "0", "REFARCH_ROLE_ARN": f"${o.plan_role_variable}", **pipeline.plan_env},
        "script": [
            f"mkdir -p {pipeline.plans_of(job)}",
            _commit_note(pipeline, job),
            ONLY_CHANGED,
            shell(pipeline.plan_argv(job)) + ' "$@"',
        ],
        "artifacts": {
            "when": "always",
            "paths": [f"{pipeline.plans_of(job)}/", f"{REPORTS}/{job.plan_id}.json"],
            "access": "developer",  # the binary plans can hold secrets
            "expire_in": "7 days",
        },
    }


def _apply_job(pipeline: CiPipeline, job: CiJob) -> dict[str, Any]:
    o = pipeline.options
    approval = any(o.needs_approval(a) for a in job.accounts)
    return {
        "extends": ".refarch",
        "stage": "deploy",
        "needs": [job.plan_id],  # its saved plans, as the artifact
        # one apply per account at a time, across pipelines, oldest first (a project setting:
        # `refarch ci gitlab` prints the API call)
        "resource_group": f"refarch-{job.environment}",
        "environment": {
            "name": job.environment,
            "deployment_tier": "production" if approval else "other",
        },
        "interruptible": False,
        "rules": _on_branch(pipeline, manual=approval),
        "script": [shell(pipeline.apply_argv(job))],
        "artifacts": {
            "when": "always",
            "paths": [f"{REPORTS}/{job.id}.json", pipeline.runs_dir],
            "expire_in": "30 days",
        },
    }


def _drift_job(pipeline: CiPipeline, job: CiDriftJob) -> dict[str, Any]:
    o = pipeline.options
    return {
        "extends": ".refarch",
        "stage": "drift",
        "needs": [],
        # the project's pipeline schedule (`refarch ci gitlab` prints the API call that makes it)
        "rules": [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}],
        # read-only: the plan role, no state locks
        "variables": {"REFARCH_ROLE_ARN": f"${o.plan_role_variable}", **pipeline.plan_env},
        "script": [DRIFT_CHECK.format(argv=shell(pipeline.drift_argv(job)), account=job.account).strip()],
        "after_script": [f"cat {job.folder}/summary.md 2>/dev/null || true"],
        "artifacts": {
            "when": "always",
            "paths": [f"{job.folder}/drift.json", f"{job.folder}/summary.md"],
            "expire_in": "30 days",
        },
    }


def gitlab_pipeline(pipeline: CiPipeline) -> dict[str, str]:
    """One .gitlab-ci.yml: a plan job for merge requests; on the branch, per slice a plan job
    and an apply job of exactly its saved plans."""
    o = pipeline.options
    before = [
        f'mkdir -p {TOOLS}/bin "$PIP_CACHE_DIR" "$TF_PLUGIN_CACHE_DIR"',
        *o.install_lines(),
        *o.terraform_lines(),
        f'export PATH="$PWD/{TOOLS}/bin:$PATH"',
        OIDC,
        f"export AWS_REGION={o.region}",
    ]
    lock_files = f"{pipeline.directory}/**/.terraform.lock.hcl".removeprefix("./")
    doc: dict[str, Any] = {
        # one stage for the plan and apply jobs: their `needs:` order them, tier by tier
        "stages": ["review", "deploy"],
        "variables": {
            # apply jobs assume this role; plan jobs their own (read-only) one
            "REFARCH_ROLE_ARN": f"${o.role_variable}",
            "PIP_CACHE_DIR": f"$CI_PROJECT_DIR/{CACHE}/pip",
            "TF_PLUGIN_CACHE_DIR": f"$CI_PROJECT_DIR/{CACHE}/plugins",
        },
        ".refarch": {
            "image": f"python:{o.python_version}",
            "id_tokens": {"AWS_ID_TOKEN": {"aud": "sts.amazonaws.com"}},
            "cache": [
                {"key": f"refarch-pip-{o.python_version}", "paths": [f"{CACHE}/pip/"]},
                {
                    "key": {"files": [lock_files], "prefix": f"refarch-providers-{o.terraform_version}"},
                    "paths": [f"{CACHE}/plugins/"],
                },
            ],
            "before_script": before,
        },
        "refarch-plan": {
            "extends": ".refarch",
            "stage": "review",
            "rules": [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}],
            "variables": {
                "GIT_DEPTH": "0",
                "REFARCH_ROLE_ARN": f"${o.plan_role_variable}",
                **pipeline.plan_env,
            },
            "script": [
                'git fetch origin "$CI_MERGE_REQUEST_TARGET_BRANCH_NAME"',
                shell(pipeline.review_argv("origin/BASE")).replace(
                    "origin/BASE", '"origin/$CI_MERGE_REQUEST_TARGET_BRANCH_NAME"'
                ),
            ],
            "after_script": [COMMENT],
            "artifacts": {
                "when": "always",
                "paths": [f"{REPORTS}/", f"{PLANS}/", pipeline.runs_dir],
                "exclude": [f"{PLANS}/*.tfplan"],
                "expire_in": "30 days",
            },
        },
    }
    for job in pipeline.jobs:
        doc[job.plan_id] = _plan_job(pipeline, job)
    for job in pipeline.jobs:
        doc[job.id] = _apply_job(pipeline, job)
    if pipeline.drift:
        doc["stages"].append("drift")
        for drift in pipeline.drift:
            doc[drift.id] = _drift_job(pipeline, drift)
    return {GITLAB_FILE: to_yaml(doc, "gitlab", pipeline.directory)}


def drift_schedule_call(pipeline: CiPipeline) -> str | None:
    """The API call that makes the pipeline schedule the drift jobs run on (`[ci]
    drift_schedule` on the branch; run it once with a maintainer's token). None: no drift."""
    if not pipeline.drift:
        return None
    return (
        'curl --fail --request POST --header "PRIVATE-TOKEN: $GITLAB_TOKEN" '
        '"$CI_API_V4_URL/projects/$CI_PROJECT_ID/pipeline_schedules" '
        '--data-urlencode "description=refarch drift" '
        f'--data-urlencode "ref={pipeline.options.branch}" '
        f'--data-urlencode "cron={pipeline.options.drift_schedule}" '
        '--data-urlencode "cron_timezone=UTC"'
    )


def resource_group_calls(pipeline: CiPipeline) -> list[str]:
    """The API calls that put each apply job's resource group in `oldest_first` mode (a project
    setting: run them once with a maintainer's token, and again after adding accounts)."""
    groups = dict.fromkeys(job.environment for job in pipeline.jobs)
    return [
        'curl --fail --request PUT --header "PRIVATE-TOKEN: $GITLAB_TOKEN" '
        f'"$CI_API_V4_URL/projects/$CI_PROJECT_ID/resource_groups/refarch-{group}" '
        "--data process_mode=oldest_first"
        for group in groups
    ]
