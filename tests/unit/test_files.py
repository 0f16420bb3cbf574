"""refarch.files: the atomic writer, the "is this folder ours" check, no-follow deletes and
chmods, bounded reads, and the per-user key."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from refarch import files
from refarch.errors import UnreadableFile, UnsafeLocalState


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_write_atomic_replaces_whole_file_with_the_mode_given(tmp_path):
    target = tmp_path / "new" / "record.json"
    files.write_atomic(target, "one\n")
    assert target.read_text() == "one\n" and mode(target) == 0o600
    assert mode(target.parent) == 0o700
    files.write_atomic(target, b"two\n", mode=0o644)
    assert target.read_bytes() == b"two\n" and mode(target) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["record.json"]  # no temp file left


def test_write_atomic_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "record.json"
    files.write_atomic(target, "old")

    class Boom(bytes):
        pass

    with pytest.raises(TypeError):
        files.write_atomic(target, 42)  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_local_dir_creates_private_folders_and_checks_every_level(tmp_path):
    folder = files.local_dir(tmp_path, "runs", "x")
    assert folder == tmp_path / ".refarch" / "runs" / "x"
    for level in (tmp_path / ".refarch", tmp_path / ".refarch/runs", folder):
        assert mode(level) == 0o700
    (tmp_path / ".refarch").chmod(0o777)
    with pytest.raises(UnsafeLocalState) as caught:
        files.local_dir(tmp_path, "runs")
    assert caught.value.exit_code == 2
    assert "writable by group or others" in str(caught.value)
    assert f"chmod go-w {tmp_path / '.refarch'}" in str(caught.value)


def test_a_symlinked_level_is_refused_never_followed(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmp_path / ".refarch").mkdir(mode=0o700)
    (tmp_path / ".refarch" / "cache").symlink_to(elsewhere)
    with pytest.raises(UnsafeLocalState, match="symbolic link"):
        files.local_dir(tmp_path, "cache")
    with pytest.raises(UnsafeLocalState, match="symbolic link"):
        files.write_atomic(tmp_path / ".refarch" / "cache" / "f", "x")
    assert list(elsewhere.iterdir()) == []


@pytest.mark.skipif(os.getuid() != 0, reason="making a folder someone else's needs root")
def test_a_folder_owned_by_someone_else_is_refused_with_the_chown_fix(tmp_path):
    (tmp_path / ".refarch").mkdir(mode=0o700)
    os.chown(tmp_path / ".refarch", 4321, -1)
    with pytest.raises(UnsafeLocalState) as caught:
        files.local_dir(tmp_path)
    assert "owned by uid 4321" in str(caught.value) and "chown" in str(caught.value)


def test_local_dir_without_create_stops_at_the_first_missing_level(tmp_path):
    assert files.local_dir(tmp_path, "cache", create=False) == tmp_path / ".refarch" / "cache"
    assert not (tmp_path / ".refarch").exists()


def test_remove_never_follows_a_symlink(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "state.tfstate").write_text("{}")
    work = tmp_path / ".refarch" / "work"
    work.mkdir(parents=True)
    (work / "link").symlink_to(precious)
    (work / "file-link").symlink_to(precious / "state.tfstate")
    files.remove(work / "file-link")
    files.remove(work)
    assert not work.exists()
    assert (precious / "state.tfstate").read_text() == "{}"
    link = tmp_path / "dir-link"
    link.symlink_to(precious)
    files.remove(link)
    assert precious.is_dir() and not link.exists()
    files.remove(tmp_path / "missing")  # nothing to do


def test_chmod_changes_the_path_itself_and_refuses_a_symlink(tmp_path):
    target = tmp_path / "theirs"
    target.write_text("x")
    target.chmod(0o644)
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(UnsafeLocalState, match="symbolic link"):
        files.chmod(link, 0o600)
    assert mode(target) == 0o644
    files.chmod(target, 0o600)
    assert mode(target) == 0o600


def test_read_bounded_refuses_a_fifo_without_waiting(tmp_path):
    fifo = tmp_path / "root.hcl"
    os.mkfifo(fifo)
    result: list[BaseException] = []
    reader = threading.Thread(target=lambda: _capture(result, fifo), daemon=True)
    reader.start()
    reader.join(timeout=30)  # a safety net for a broken implementation, not a timed assertion
    assert not reader.is_alive(), "reading a FIFO hung"
    assert isinstance(result[0], UnreadableFile) and "FIFO" in str(result[0])


def _capture(into, path):
    try:
        files.read_bounded(path)
    except BaseException as exc:
        into.append(exc)


def test_read_bounded_refuses_devices_folders_and_large_files(tmp_path):
    with pytest.raises(UnreadableFile, match="device"):
        files.read_bounded("/dev/zero")
    with pytest.raises(UnreadableFile, match="folder"):
        files.read_bounded(tmp_path)
    big = tmp_path / "big.hcl"
    big.write_bytes(b"#" * 101)
    with pytest.raises(UnreadableFile, match="more than the 100"):
        files.read_bounded(big, limit=100)
    assert files.read_bounded(big, limit=101) == b"#" * 101
    with pytest.raises(UnreadableFile, match="cannot read"):
        files.read_bounded(tmp_path / "missing")


def test_read_text_names_the_line_of_the_first_bad_byte(tmp_path):
    path = tmp_path / "x.tf"
    path.write_bytes(b"ok\nstill ok\n\xff\xfe\n")
    with pytest.raises(UnreadableFile) as caught:
        files.read_text(path, shown="x.tf")
    assert caught.value.line == 3 and str(caught.value).startswith("x.tf:3: is not UTF-8")


def test_user_key_is_private_and_stable(tmp_path):
    path = tmp_path / "config" / "refarch" / files.KEY_FILE
    key = files.user_key(path)
    assert len(key) == files.KEY_BYTES and mode(path) == 0o600 and mode(path.parent) == 0o700
    assert files.user_key(path) == key
    path.chmod(0o644)
    with pytest.raises(UnsafeLocalState, match="read by group or others"):
        files.user_key(path)


def test_key_path_follows_xdg_config_home(tmp_path):
    assert files.key_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "refarch" / files.KEY_FILE


def test_signed_payload_verifies_only_with_the_same_key_and_magic():
    signed = files.sign(b"m1", b"k" * 32, b"payload")
    assert files.verified_payload(b"m1", b"k" * 32, signed) == b"payload"
    assert files.verified_payload(b"m1", b"x" * 32, signed) is None
    assert files.verified_payload(b"m2", b"k" * 32, signed) is None
    assert files.verified_payload(b"m1", b"k" * 32, signed[:-1]) is None
    assert files.verified_payload(b"m1", b"k" * 32, b"") is None


def test_folders_refarch_makes_stay_private_under_a_group_writable_umask(tmp_path):
    from refarch.jobs.demo import claim_workdir

    previous = os.umask(0o002)  # Debian/Ubuntu's user-private-group default
    try:
        files.write_atomic(tmp_path / "repo" / ".refarch" / "runs" / "x" / "f.json", "{}")
        claim_workdir(tmp_path / "cwd" / ".refarch" / "demo")
    finally:
        os.umask(previous)
    assert files.local_dir(tmp_path / "repo", "runs", "x") == tmp_path / "repo/.refarch/runs/x"
    assert files.local_dir(tmp_path / "cwd", "demo") == tmp_path / "cwd/.refarch/demo"
    for level in (".refarch", ".refarch/runs", ".refarch/runs/x"):
        assert mode(tmp_path / "repo" / level) == 0o700


def test_the_report_replaces_a_symlink_instead_of_writing_through_it(tmp_path):
    from refarch.runner.report import RunReport, write_report

    victim = tmp_path / "victim"
    victim.write_text("theirs")
    link = tmp_path / "report.json"
    link.symlink_to(victim)
    report = RunReport(
        run_id="r", action="plan", engine="fake", started=0.0, finished=1.0, units={}, ledger_path="l"
    )
    write_report(report, link)
    assert victim.read_text() == "theirs"
    assert not link.is_symlink() and mode(link) == 0o600
