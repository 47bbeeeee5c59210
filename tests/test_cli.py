"""The `cse` dispatcher: every command of its table in `cse --help`, each command's own `--help`, unknown commands."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import cse
from cse.cli import COMMANDS, main


@pytest.mark.parametrize("argv", [[], ["--help"], ["-h"]])
def test_the_command_list_names_every_command_with_its_summary(argv, capsys):
    main(argv)
    lines = capsys.readouterr().out.splitlines()
    listed = {line.split()[0]: line.split(None, 1)[1] for line in lines if line.startswith("  ")}
    assert listed == {name: command.summary for name, command in COMMANDS.items()}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_has_its_own_help(name, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    usage = f"usage: cse [options] {name}" if COMMANDS[name].lightning else f"usage: cse {name}"
    assert usage in out
    assert not list(tmp_path.iterdir()), "help writes nothing"


@pytest.mark.parametrize("name", ["predict", "fitt"])
def test_an_unknown_command_is_one_error_line(name, run_cse):
    code, out, err = run_cse([name])
    assert code == 2 and out == ""
    assert err.strip() == (
        f"error: unknown command '{name}'; the commands are fit, validate, test, quickstart, eval, export, encode, "
        "search, mine, label, sweep (cse --help)"
    )


@pytest.mark.parametrize(
    "argv",
    [["fitt"], ["fit", "--config", "quickstart", "--model.temperture", "0.1"], ["fit", "--config", "no_such_recipe"]],
)
def test_under_torchrun_a_refused_command_line_is_said_by_each_machines_first_process(argv, run_cse, monkeypatch):
    """Every process exits 2; only LOCAL_RANK 0 prints the line (torchrun's other processes found the same)."""
    alone = run_cse(argv)
    assert alone.code == 2 and alone.err.startswith("error: ") and alone.err.count("\n") == 1, alone.err
    results = {}
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("LOCAL_RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        results[rank] = run_cse(argv)
    assert results[0] == alone
    assert results[1] == (2, "", "")
    monkeypatch.delenv("WORLD_SIZE")  # a LOCAL_RANK left in the environment of a process that runs alone
    assert run_cse(argv) == alone


def test_ctrl_c_outside_training_is_one_line(run_cse, monkeypatch):
    def interrupted(argv: list[str]) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("cse.commands.encode.run", interrupted)
    code, out, err = run_cse(["encode", "model", "in.txt", "out.npy"])
    assert (code, out, err) == (128 + signal.SIGINT, "", "interrupted\n")


def test_a_reader_that_leaves_the_pipe_ends_the_command_quietly(tiny_model_dir, tmp_path):
    """`cse search ... | head -1`: Python's BrokenPipeError ended in a traceback."""
    (tmp_path / "corpus.txt").write_text("".join(f"sentence number {i}\n" for i in range(200)))
    command = [sys.executable, "-m", "cse", "search", str(tiny_model_dir), "corpus.txt", "corpus.txt"]
    process = subprocess.Popen(
        [*command, "--pooler", "avg", "--top-k", "200"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(cse.__file__).parents[1])},
    )
    assert process.stdout.readline().startswith(b"query")  # the header; then the reader leaves
    process.stdout.close()
    assert process.wait(timeout=120) == 128 + signal.SIGPIPE
    err = process.stderr.read().decode()
    assert "Traceback" not in err and "Error" not in err, err


@pytest.mark.parametrize("short", [["-c", "quickstart"], ["-c=quickstart"]])
def test_the_short_config_option_names_a_recipe_as_the_long_one(short, run_cse, tmp_path, monkeypatch):
    """jsonargparse's `-c` is `--config`: a recipe's name resolves the same, and `cse sweep` finds the recipe."""
    monkeypatch.chdir(tmp_path)
    spelled_out = ["--config" + short[0].removeprefix("-c"), *short[1:]]
    long = run_cse(["fit", *spelled_out, "--print_config"])
    assert long.code == 0 and "model_name_or_path" in long.out, long.err
    assert run_cse(["fit", *short, "--print_config"]) == long
    sweep = ["sweep", "--print-jobs", "--seeds", "1", "--data.dev_file", "dev.csv"]
    expected = run_cse([*sweep, *spelled_out])
    assert expected.code == 0 and "cse fit" in expected.out, expected.err
    assert run_cse([*sweep, *short]) == expected
