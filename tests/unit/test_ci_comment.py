"""The merge request comment step that `refarch ci gitlab` emits, run as the job runs it (bash,
the job's python) against a local stand-in of GitLab's notes API (127.0.0.1): what it asks for
is GitLab's documented API (GET/POST /projects/:id/merge_requests/:iid/notes, PUT .../notes/:id,
PRIVATE-TOKEN, JSON `body`, pages of `per_page`), and the stand-in refuses anything else."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from refarch.ci.gitlab import COMMENT

MARK = "<!-- refarch-plan -->"
TOKEN = "glpat-test"  # the stand-in checks it on every call
NOTES = "/api/v4/projects/42/merge_requests/7/notes"


class FakeGitLab:
    """GitLab's merge request notes: a list of {id, body}, paged as GitLab pages it."""

    def __init__(self, notes: list[str]) -> None:
        self.notes = [{"id": n + 1, "body": body} for n, body in enumerate(notes)]
        self.calls: list[tuple[str, str]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                outer.record(self)
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path != NOTES:
                    self.answer(404, {"message": "404 Not Found"})
                    return
                per_page, page = int(query.get("per_page", 20)), int(query.get("page", 1))
                ordered = outer.notes if query.get("sort") == "asc" else outer.notes[::-1]
                self.answer(200, ordered[(page - 1) * per_page : page * per_page])

            def do_POST(self) -> None:
                outer.record(self)
                if urlsplit(self.path).path != NOTES:
                    self.answer(404, {"message": "404 Not Found"})
                    return
                note = {"id": len(outer.notes) + 1, "body": self.body()["body"]}
                outer.notes.append(note)
                self.answer(201, note)

            def do_PUT(self) -> None:
                outer.record(self)
                path = urlsplit(self.path).path
                found = [n for n in outer.notes if path == f"{NOTES}/{n['id']}"]
                if not found:
                    self.answer(404, {"message": "404 Note Not Found"})
                    return
                found[0]["body"] = self.body()["body"]
                self.answer(200, found[0])

            def body(self) -> dict[str, Any]:
                assert self.headers["Content-Type"] == "application/json"
                data: dict[str, Any] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                return data

            def answer(self, status: int, document: Any) -> None:
                data = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v4"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def record(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        if handler.headers.get("PRIVATE-TOKEN") != TOKEN:
            raise AssertionError("the API is called without the project access token")
        self.calls.append((handler.command, handler.path))


@pytest.fixture
def job(tmp_path: Path) -> Iterator[Any]:
    """Runs the step in a job folder with refarch-plans/summary.md, as the runner does."""
    (tmp_path / "refarch-plans").mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)  # the job's python

    def run(gitlab: FakeGitLab | None, summary: str, token: str = TOKEN) -> None:
        (tmp_path / "refarch-plans" / "summary.md").write_text(summary, encoding="utf-8")
        env = {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "CI_API_V4_URL": gitlab.url if gitlab else "http://127.0.0.1:1/api/v4",
            "CI_PROJECT_ID": "42",
            "CI_MERGE_REQUEST_IID": "7",
            "REFARCH_GITLAB_TOKEN": token,
        }
        done = subprocess.run(
            ["bash", "-ec", COMMENT], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr

    yield run


def test_the_plan_summary_is_one_note_updated_in_place(job: Any) -> None:
    gitlab = FakeGitLab(["looks good", "please plan"])
    try:
        job(gitlab, "| unit | changes |\n| dev/vpc | +3 |\n")
        job(gitlab, "| unit | changes |\n| dev/vpc | +1 |\n")
    finally:
        gitlab.server.shutdown()
    ours = [n for n in gitlab.notes if n["body"].startswith(MARK)]
    assert len(ours) == 1 and ours[0]["body"] == f"{MARK}\n| unit | changes |\n| dev/vpc | +1 |\n"
    assert [c[0] for c in gitlab.calls] == ["GET", "POST", "GET", "PUT"]


def test_the_note_is_found_past_the_first_page(job: Any) -> None:
    """An MR discussed at length: the note from the first push is found, never posted twice."""
    gitlab = FakeGitLab([f"comment {n}" for n in range(120)] + [f"{MARK}\nold"] + ["later"] * 150)
    try:
        job(gitlab, "new")
    finally:
        gitlab.server.shutdown()
    assert [n["body"] for n in gitlab.notes if n["body"].startswith(MARK)] == [f"{MARK}\nnew"]
    assert [c[0] for c in gitlab.calls] == ["GET", "GET", "PUT"]


def test_without_a_token_the_step_calls_nothing(job: Any) -> None:
    job(None, "anything", token="")
