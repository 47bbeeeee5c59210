"""The `cse` dispatcher: every command of its table in `cse --help`, each command's own `--help`, unknown commands."""

import pytest

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
