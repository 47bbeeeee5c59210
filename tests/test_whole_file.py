"""`cse.whole_file.written_whole`: the target is replaced only by a complete file, and nothing else is left."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cse.whole_file import written_whole
from cse.writer_identity import host_name


def test_the_file_written_replaces_the_target_when_the_block_ends(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with written_whole(target) as temporary:
        assert temporary.parent == tmp_path and temporary != target
        temporary.write_text("new")
        assert target.read_text() == "old"  # not before the block ends
    assert target.read_text() == "new"
    assert [path.name for path in tmp_path.iterdir()] == ["out.txt"]


def test_a_failure_keeps_the_target_and_removes_what_was_written(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), written_whole(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [path.name for path in tmp_path.iterdir()] == ["out.txt"]


def test_temporaries_of_dead_processes_on_this_host_are_removed_by_the_next_write(tmp_path):
    target = tmp_path / "last.ckpt"
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()  # its pid names no process now

    def leftover(host: str, pid: int, name: str = "last.ckpt") -> Path:
        path = tmp_path / f".{name}.cse-tmp-{host}-{pid}-0123abcd"
        path.write_text("half written")
        return path

    stale = leftover(host_name(), process.pid)
    running = leftover(host_name(), os.getppid())  # a write still under way
    other_host = leftover("elsewhere", process.pid)  # a shared folder: that host's processes are not ours to judge
    other_file = leftover(host_name(), process.pid, name="best-step=5.ckpt")  # removed when that file is written
    with written_whole(target) as temporary:
        temporary.write_text("new")
    assert not stale.exists()
    assert running.exists() and other_host.exists() and other_file.exists()
    assert target.read_text() == "new"


def test_a_symbolic_link_is_written_through_at_the_file_it_leads_to(tmp_path):
    """The link stays a link; the file it leads to is replaced in its own folder, where the temporary file was."""
    (tmp_path / "links").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "out.txt").write_text("old")
    link = tmp_path / "links" / "out.txt"
    link.symlink_to(Path("..") / "data" / "out.txt")
    chained = tmp_path / "links" / "chained.txt"
    chained.symlink_to("out.txt")  # a link to the link
    with written_whole(chained) as temporary:
        assert temporary.parent == tmp_path / "data"
        temporary.write_text("new")
    assert link.is_symlink() and chained.is_symlink() and os.readlink(link) == str(Path("..") / "data" / "out.txt")
    assert (tmp_path / "data" / "out.txt").read_text() == "new"
    assert sorted(path.name for path in (tmp_path / "data").iterdir()) == ["out.txt"]
    dangling = tmp_path / "links" / "new.txt"
    dangling.symlink_to(tmp_path / "data" / "new.txt")  # leads to a file not written yet: written there
    with written_whole(dangling) as temporary:
        temporary.write_text("first")
    assert dangling.is_symlink() and (tmp_path / "data" / "new.txt").read_text() == "first"
