"""scripts/checkpoint_writes.py on the tiny model: every writer's file reads back equal, and the table is printed."""

import re

import pytest


def test_each_writer_writes_the_checkpoint_and_is_timed(script_module, tiny_model_dir, tmp_path, capsys):
    checkpoint_writes = script_module("checkpoint_writes")
    checkpoint_writes.main(
        ["--model", str(tiny_model_dir), "--device", "cpu", "--repeats", "1", "--dir", str(tmp_path)]
    )
    output = capsys.readouterr().out
    rows = {
        match[1]: [float(value) for value in match.groups()[1:]]
        for match in re.finditer(
            r"^(lightning|whole-file|background|new best)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", output, re.M
        )
    }
    assert list(rows) == ["lightning", "whole-file", "background", "new best"]
    for blocked, written, lost in rows.values():
        assert blocked <= written + 0.01 and lost <= written + 0.01
    assert "files read back equal to the checkpoint: yes" in output
    assert list(tmp_path.iterdir()) == []  # the checkpoints are removed


@pytest.mark.parametrize(("name", "problem"), [("missing/folder", "no such folder"), ("a_file", "not a folder")])
def test_a_dir_that_is_not_a_folder_is_one_error_line(name, problem, script_module, tmp_path, capsys):
    (tmp_path / "a_file").write_text("not a folder\n")
    with pytest.raises(SystemExit) as exit_:
        script_module("checkpoint_writes").main(["--random-init-config", "bert-base", "--dir", str(tmp_path / name)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.splitlines()[-1].endswith(f"error: --dir {tmp_path / name}: {problem}"), err
    assert "Traceback" not in err and not (tmp_path / "missing").exists()
