"""`cse export` never loses what it did not write: through the `cse` entry point, every place an export must not go
ends with one `error:` line naming it, exit status 2, and every file on disk as it was (checksums before and after).

`pytest tests/test_export_target.py -rP` lists the messages.
"""

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from cse.export.target import FILE_LIST_NAME

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RUN = "runs/quickstart/version_0"  # where each test finds its copy of the run, under its tmp_path
BEST = f"{RUN}/checkpoints/best-step=2.ckpt"


@pytest.fixture
def workdir(fitted_run, tmp_path, monkeypatch) -> Path:
    """tmp_path, the working directory, holding a copy of the run at `RUN`; HOME is `tmp_path/users/me`."""
    shutil.copytree(fitted_run, tmp_path / RUN, symlinks=True)
    (tmp_path / "users" / "me").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(tmp_path / "users" / "me"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _snapshot(root: Path) -> dict[str, str]:
    """Every entry under `root`, hidden ones included: a file's checksum and mode, a link's target, a folder's mode."""
    entries = {}
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if path.is_symlink():
            entries[name] = f"link to {os.readlink(path)}"
        elif path.is_dir():
            entries[name] = f"folder {stat.S_IMODE(path.stat().st_mode):o}"
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            entries[name] = f"file {stat.S_IMODE(path.stat().st_mode):o} {digest}"
    return entries


def _refused(run_cse, argv: list[str], root: Path) -> str:
    """Run `cse ARGV`; check exit status 2, one `error:` line, no traceback, nothing under `root` changed."""
    before = _snapshot(root)
    code, out, err = run_cse(argv)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1, err
    assert "Traceback" not in err and "exported:" not in out
    assert _snapshot(root) == before, "a file changed, appeared or went away"
    return errors[0]


def _not_an_export(directory: Path) -> str:
    (directory / "mine").mkdir(parents=True)
    (directory / "mine" / "notes.txt").write_text("my notes\n")
    return "mine"


def _export_with_a_file_added(directory: Path) -> str:
    shutil.copytree(directory / RUN / "best_model", directory / "exported")
    (directory / "exported" / "eval.json").write_text('{"scores": {}}\n')
    return "exported"


def _export_of_an_earlier_cse(directory: Path) -> str:
    shutil.copytree(directory / RUN / "best_model", directory / "old-export")
    (directory / "old-export" / FILE_LIST_NAME).unlink()
    return "old-export"


def _other_run(directory: Path) -> str:
    shutil.copytree(directory / RUN, directory / "runs/quickstart/version_1", symlinks=True)
    return "runs/quickstart/version_1"


def _link(target: str) -> Callable[[Path], str]:
    def setup(directory: Path) -> str:
        (directory / "link").symlink_to(target)
        return "link"

    return setup


def _through_linked_parent(directory: Path) -> str:
    (directory / "parent-link").symlink_to("runs/quickstart")
    return "parent-link/version_0"


# case: (setup returning OUT, or OUT itself; the error line after "error: export directory OUT: ")
CASES = {
    "the run folder (the reported data loss)": (RUN, f"holds {BEST}, which the export reads; choose another directory"),
    "the run's checkpoints folder": (f"{RUN}/checkpoints", f"holds {BEST}, which the export reads"),
    "a new folder in the checkpoints folder": (
        f"{RUN}/checkpoints/exported",
        "is in the run's checkpoints folder, which Lightning manages",
    ),
    "the experiment folder above the run": ("runs/quickstart", f"holds {BEST}, which the export reads"),
    "the current directory": (".", f"holds {BEST}, which the export reads"),
    "the root": ("/", f"holds {BEST}, which the export reads"),
    "the home directory": ("users/me", "is the home directory; choose a new directory for the export"),
    "a folder above the home directory": ("users", "holds the home directory; choose a new directory for the export"),
    "a folder that is not an export": (
        _not_an_export,
        "is not a cse export (no .cse_export.json); --overwrite replaces only a previous cse export",
    ),
    "an export a file was added to": (
        _export_with_a_file_added,
        "holds files cse did not write (eval.json); --overwrite replaces only what cse exported",
    ),
    "an export of an earlier cse": (_export_of_an_earlier_cse, "has no .cse_export.json"),
    "another run folder": (_other_run, "is a training run folder, not a cse export"),
    "the checkpoint itself": (BEST, f"holds {BEST}, which the export reads"),
    "a file of the run": (f"{RUN}/config.yaml", "is a file"),
    "a symbolic link to the run folder": (_link(RUN), f"is a symbolic link (to {RUN})"),
    "a symbolic link to a previous export": (_link(f"{RUN}/best_model"), "is a symbolic link"),
    "the run folder through a linked parent": (_through_linked_parent, f"holds {BEST}, which the export reads"),
}


@pytest.mark.parametrize("overwrite", [True, False], ids=["--overwrite", "no flag"])
@pytest.mark.parametrize("case", CASES)
def test_an_export_never_replaces_what_it_did_not_write(case, overwrite, workdir, run_cse):
    setup, expected = CASES[case]
    out = setup(workdir) if callable(setup) else setup
    line = _refused(run_cse, ["export", RUN, out, *(["--overwrite"] if overwrite else [])], workdir)
    print(f"{case} | {line}")
    assert line.startswith(f"error: export directory {out}: ") and expected in line


def test_the_current_directory_is_never_replaced(workdir, run_cse, monkeypatch):
    """Not holding the checkpoint, the working directory (and every folder above it) is still refused."""
    (workdir / "elsewhere" / "deeper").mkdir(parents=True)
    monkeypatch.chdir(workdir / "elsewhere" / "deeper")
    run = str(workdir / RUN)
    for out, expected in ((".", "is the current directory"), ("..", "holds the current directory")):
        line = _refused(run_cse, ["export", run, out, "--overwrite"], workdir)
        print(f"{out} | {line}")
        assert line == f"error: export directory {out}: {expected}; choose a new directory for the export"


def test_overwrite_replaces_a_previous_export_with_ordinary_permissions(workdir, run_cse):
    code, out, err = run_cse(["export", RUN, "exported"])
    assert code == 0 and out.strip() == "exported: exported", err
    code, _, err = run_cse(["export", RUN, "exported"])
    assert code == 2 and "exported: already exists; pass --overwrite to replace it" in err
    code, out, err = run_cse(["export", RUN, "exported", "--overwrite"])
    assert code == 0 and out.strip() == "exported: exported", err
    # What `cse fit` does after training, and again when a resumed run ends: its best_model is a previous export.
    code, _, err = run_cse(["export", RUN, f"{RUN}/best_model", "--overwrite"])
    assert code == 0, err
    umask = os.umask(0o022)
    os.umask(umask)
    for directory in (workdir / "exported", workdir / RUN / "best_model"):  # mkdtemp's 0o700, safetensors' 0o600
        modes = {path: stat.S_IMODE(path.stat().st_mode) for path in [directory, *directory.rglob("*")]}
        assert modes == {path: (0o777 if path.is_dir() else 0o666) & ~umask for path in modes}
        assert (directory / "model.safetensors") in modes
    assert sorted(path.name for path in workdir.iterdir() if path.name.startswith(".")) == []
    assert sorted(path.name for path in (workdir / RUN).iterdir()) == [
        "best_model",
        "checkpoints",
        "config.yaml",
        "hparams.yaml",
        "metrics.csv",
        "validation_curve.png",  # cse fit draws it beside metrics.csv (cse.runs.validation_curve)
    ]


KILLED_EXPORT = """
import os, sys
from cse.export import directory as export
from cse.cli import main

if sys.argv[1] == "while writing":
    export.write_sentence_transformers_files = lambda *args: os._exit(9)
else:  # between moving the previous export aside and moving the new one in
    rename, calls = os.replace, []

    def replace(source, target):
        calls.append(source)
        if len(calls) == 2:
            os._exit(9)
        rename(source, target)

    os.replace = replace
main(["export", sys.argv[2], sys.argv[3], "--overwrite"])
"""


@pytest.mark.parametrize("moment", ["while writing", "between the renames"])
def test_a_killed_export_leaves_nothing_the_next_one_does_not_clean_up(moment, workdir, run_cse):
    code, _, err = run_cse(["export", RUN, "exported"])
    assert code == 0, err
    previous = _snapshot(workdir / "exported")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_EXPORT, moment, RUN, "exported"], capture_output=True, env=env, timeout=300
    )
    assert killed.returncode == 9, killed.stderr.decode()
    leftovers = [path.name for path in workdir.iterdir() if path.name.startswith(".exported.cse-")]
    assert len(leftovers) == (1 if moment == "while writing" else 2), leftovers  # 2: the staging and the previous

    # The next export into the same folder cleans up, and puts back a previous export it finds moved aside.
    code, _, err = run_cse(["export", RUN, "other"])
    assert code == 0, err
    assert [path.name for path in workdir.iterdir() if path.name.startswith(".")] == []
    assert _snapshot(workdir / "exported") == previous
