import os
import subprocess
import sys

from cse.export.staging import ASIDE, STAGING, remove_leftovers, replace_directory, staging_directory
from cse.writer_identity import temporary_sibling


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _leftover(parent, name: str, kind: str, pid: int, host: str | None = None):
    path = temporary_sibling(parent / name, kind)
    fields = path.name.split("-")
    fields[-2] = str(pid)
    if host is not None:
        fields[-3] = host
    path = path.with_name("-".join(fields))
    path.mkdir()
    (path / "model.safetensors").write_text("half written")
    return path


def test_leftovers_of_dead_processes_on_this_host_go_and_nothing_else(tmp_path):
    dead = _dead_pid()
    stale = _leftover(tmp_path, "model", STAGING, dead)
    live = _leftover(tmp_path, "model", STAGING, os.getppid())  # a running export
    other_host = _leftover(tmp_path, "model", STAGING, dead, host="elsewhere")
    (tmp_path / ".model.tmp").mkdir()  # not ours: a name cse does not write
    (tmp_path / "model").mkdir()
    remove_leftovers(tmp_path)
    assert not stale.exists()
    assert live.exists() and other_host.exists() and (tmp_path / ".model.tmp").is_dir()


def test_a_previous_directory_moved_aside_by_a_killed_process_is_put_back(tmp_path):
    aside = _leftover(tmp_path, "model.v2", ASIDE, _dead_pid())
    remove_leftovers(tmp_path)
    assert not aside.exists() and (tmp_path / "model.v2" / "model.safetensors").read_text() == "half written"
    again = _leftover(tmp_path, "model.v2", ASIDE, _dead_pid())  # now `model.v2` exists: the aside one is old
    remove_leftovers(tmp_path)
    assert not again.exists() and (tmp_path / "model.v2").is_dir()


def test_staging_gets_ordinary_permissions_and_replaces_the_previous_directory(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "old").write_text("previous")
    staging = staging_directory(tmp_path / "model")
    assert staging.stat().st_mode & 0o777 == 0o777 & ~umask
    (staging / "new").write_text("next")
    replace_directory(staging, tmp_path / "model")
    assert [path.name for path in tmp_path.iterdir()] == ["model"]
    assert [path.name for path in (tmp_path / "model").iterdir()] == ["new"]
