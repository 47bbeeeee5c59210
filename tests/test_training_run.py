import pytest

from cse.errors import InputError
from cse.training_run import find_checkpoint


def _run_dir(tmp_path, *names: str):
    checkpoints = tmp_path / "version_0" / "checkpoints"
    checkpoints.mkdir(parents=True)
    for name in names:
        (checkpoints / name).write_bytes(b"")
    return tmp_path / "version_0"


def _file(path):
    path.write_bytes(b"")
    return path


def test_a_run_directory_means_its_best_checkpoint_else_the_last(tmp_path):
    assert find_checkpoint(_run_dir(tmp_path / "a", "best-step=40.ckpt", "last.ckpt")).name == "best-step=40.ckpt"
    assert find_checkpoint(_run_dir(tmp_path / "b", "last.ckpt")).name == "last.ckpt"
    run_dir = _run_dir(tmp_path / "c", "last.ckpt")
    assert find_checkpoint(run_dir / "checkpoints" / "last.ckpt") == run_dir / "checkpoints" / "last.ckpt"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "missing.ckpt", "missing.ckpt: no such file$"),
        (lambda tmp: tmp / "missing", "missing: no such file or run directory"),
        (lambda tmp: _run_dir(tmp), r"no checkpoints/best-step=N.ckpt or checkpoints/last.ckpt"),
        (
            lambda tmp: _run_dir(tmp, "best-step=2.ckpt", "best-step=4.ckpt"),
            r"several best checkpoints \(best-step=2.ckpt, best-step=4.ckpt\); name the .ckpt to export",
        ),
        (lambda tmp: _file(tmp / "model.bin"), "model.bin: expected a .ckpt file or a run directory"),
    ],
)
def test_what_is_not_a_checkpoint_is_a_one_line_error(make, message, tmp_path):
    with pytest.raises(InputError, match=message) as error:
        find_checkpoint(make(tmp_path))
    assert "\n" not in str(error.value)
