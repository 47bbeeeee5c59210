"""`cse.whole_file.written_whole`: the target is replaced only by a complete file, and nothing else is left."""

import pytest

from cse.whole_file import written_whole


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
