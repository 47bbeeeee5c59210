import math

import pytest
import torch

from cse.errors import InputError
from cse.runs.finished_run import Validation, read_training_run
from cse.runs.layout import find_checkpoint


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


def test_a_step_validated_twice_counts_once_with_its_last_row(tmp_path):
    """A metrics.csv that kept a resumed run's repeated steps (merged by hand, another tool): the last row wins."""
    checkpoint = tmp_path / "version_0" / "checkpoints" / "best-step=6.ckpt"
    checkpoint.parent.mkdir(parents=True)
    torch.save({"hyper_parameters": {"temp": 0.05}, "global_step": 6}, checkpoint)
    (tmp_path / "version_0" / "metrics.csv").write_text(
        "epoch,step,train/loss,val/stsb_pearson,val/stsb_spearman\n"
        "0,1,,0.2,0.25\n0,3,,0.4,0.5\n0,5,,0.6,0.75\n0,4,0.3,,\n"  # crashed after step 6's validation; resumed at 4
        "0,5,,0.7,0.8\n0,7,,0.6,0.7\n"
    )
    run = read_training_run(checkpoint)
    assert run.validations == [
        Validation(2, 0.25, 0.2),
        Validation(4, 0.5, 0.4),
        Validation(6, 0.8, 0.7),
        Validation(8, 0.7, 0.6),
    ]
    assert run.exported_validation == Validation(6, 0.8, 0.7)


def test_a_matryoshka_runs_spearman_of_each_truncation_is_read_with_its_validation(tmp_path):
    checkpoint = tmp_path / "version_0" / "checkpoints" / "best-step=4.ckpt"
    checkpoint.parent.mkdir(parents=True)
    torch.save({"hyper_parameters": {"matryoshka_dims": [32, 16, 8]}, "global_step": 4}, checkpoint)
    (tmp_path / "version_0" / "metrics.csv").write_text(
        "epoch,step,train/loss,val/stsb_pearson,val/stsb_spearman,val/stsb_spearman_dim16,val/stsb_spearman_dim8\n"
        "0,1,,0.2,0.25,0.2,0.1\n0,2,0.3,,,,\n0,3,,0.4,0.5,0.45,0.3\n"
    )
    run = read_training_run(checkpoint)
    assert run.validations == [Validation(2, 0.25, 0.2, {16: 0.2, 8: 0.1}), Validation(4, 0.5, 0.4, {16: 0.45, 8: 0.3})]
    assert run.exported_validation.spearman_by_dimension == {16: 0.45, 8: 0.3}


def _run_with_metrics(tmp_path, metrics: bytes, global_step: int = 4):
    checkpoint = tmp_path / "version_0" / "checkpoints" / "last.ckpt"
    checkpoint.parent.mkdir(parents=True)
    torch.save({"hyper_parameters": {"temp": 0.05}, "global_step": global_step}, checkpoint)
    (tmp_path / "version_0" / "metrics.csv").write_bytes(metrics)
    return checkpoint


def test_a_last_line_cut_short_is_left_out_not_read_as_its_first_digits(tmp_path):
    """The run stopped while writing step 4's Spearman `0.0260`: `0.0` is not its validation."""
    header = b"epoch,step,val/stsb_pearson,val/stsb_spearman\r\n"
    run = read_training_run(_run_with_metrics(tmp_path, header + b"0,1,0.2,0.25\r\n0,3,0.03,0.0"))
    assert run.validations == [Validation(2, 0.25, 0.2)]
    assert run.incomplete_metrics_line == 3 and run.exported_validation is None


def test_a_nan_validation_is_kept_as_logged(tmp_path):
    header = b"epoch,step,val/stsb_pearson,val/stsb_spearman\n"
    run = read_training_run(_run_with_metrics(tmp_path, header + b"0,1,nan,nan\n0,3,0.4,0.5\n"))
    assert [v.step for v in run.validations] == [2, 4] and math.isnan(run.validations[0].spearman)
    assert run.incomplete_metrics_line is None


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (b"0,1,0.2,inf\n", "line 2: val/stsb_spearman is inf, outside \\[-1, 1\\]"),
        (b"0,1,0.2,0.3\n0,3,1.5,0.4\n", "line 3: val/stsb_pearson is 1.5, outside \\[-1, 1\\]"),
        (b"0,x,0.2,0.3\n", "line 2: no valid step \\('x'\\)"),
        (b"0,1,0.2,0.3\n\xff\xfe\n", "line 3: not UTF-8 text"),
    ],
)
def test_a_damaged_metrics_file_is_one_line_naming_file_and_line(rows, message, tmp_path):
    checkpoint = _run_with_metrics(tmp_path, b"epoch,step,val/stsb_pearson,val/stsb_spearman\n" + rows)
    with pytest.raises(InputError, match=f"^metrics file {tmp_path / 'version_0' / 'metrics.csv'} {message}") as e:
        read_training_run(checkpoint)
    assert "\n" not in str(e.value)
