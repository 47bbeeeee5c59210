"""`cse` leaves out the library lines its user can do nothing about, and keeps every other line."""

import logging
import warnings

import pytest
import torch
from lightning.fabric.accelerators import cuda as lightning_cuda
from lightning.pytorch import Trainer
from lightning.pytorch.demos.boring_classes import BoringModel
from lightning.pytorch.utilities import _pytree, rank_zero_info
from lightning.pytorch.utilities.model_summary import ModelSummary

from cse import library_notices
from cse.library_notices import quiet_library_notices


@pytest.fixture
def restored_filters():
    """Lightning's logger and the warning filters as before the test, without what an earlier `cse.cli.main` in this
    process added (it quiets the notices for the whole process)."""
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    filters = list(logger.filters)
    logger.filters = [kept for kept in filters if kept is not library_notices._drop_tips]
    with warnings.catch_warnings():
        warnings.resetwarnings()
        yield
    logger.filters = filters


def test_lightnings_tip_is_left_out_and_its_other_lines_kept(restored_filters, caplog):
    with caplog.at_level(logging.INFO):
        Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    assert "💡 Tip" in caplog.text  # what Lightning 2.6 logs at every Trainer
    caplog.clear()
    quiet_library_notices()
    quiet_library_notices()  # a second call adds nothing
    with caplog.at_level(logging.INFO):
        Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
        rank_zero_info("val at step 20: STS Spearman 88.50")  # cse's own lines come through the same logger
    assert "💡 Tip" not in caplog.text
    assert "GPU available" in caplog.text and "val at step 20" in caplog.text


def test_lightnings_tf32_advice_on_a_gpu_is_left_out(restored_filters, caplog, monkeypatch):
    """The advice Lightning logs for an Ampere or later GPU (faked here): cse keeps float32 matmuls exact."""
    check = lightning_cuda._check_cuda_matmul_precision.__wrapped__  # Lightning's is cached: once per process
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(lightning_cuda, "_is_ampere_or_later", lambda device=None: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")
    with caplog.at_level(logging.INFO):
        check(torch.device("cuda", 0))
    assert "set_float32_matmul_precision" in caplog.text and "NVIDIA H200" in caplog.text
    caplog.clear()
    quiet_library_notices()
    with caplog.at_level(logging.INFO):
        check(torch.device("cuda", 0))
        rank_zero_info("You are using a CUDA device ('NVIDIA H200')")  # a line that only starts alike is kept
    assert "set_float32_matmul_precision" not in caplog.text and "NVIDIA H200" in caplog.text


def test_torchs_deprecation_of_lightnings_leaf_spec_is_left_out_and_other_future_warnings_kept(restored_filters):
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as before:
        warnings.simplefilter("always")
        _pytree._tree_flatten(1)  # Lightning flattening a leaf: torch's LeafSpec
    assert any("LeafSpec" in str(warning.message) for warning in before)
    quiet_library_notices()
    with warnings.catch_warnings(record=True) as after:
        _pytree._tree_flatten(1)
        warnings.warn("another library's deprecation", FutureWarning, stacklevel=1)
    assert [str(warning.message) for warning in after] == ["another library's deprecation"]


@pytest.mark.parametrize("precision", ["bf16-mixed"])  # a CPU takes 16-mixed as bf16-mixed
def test_the_model_summarys_mixed_precision_notice_is_left_out(restored_filters, precision):
    """Under mixed precision the weights are float32, the size the summary gives: its notice says nothing to act on."""
    module = BoringModel()
    module.trainer = Trainer(accelerator="cpu", precision=precision, logger=False, enable_progress_bar=False)
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as before:
        warnings.simplefilter("always")
        ModelSummary(module)
    assert any("not supported by the model summary" in str(warning.message) for warning in before)
    quiet_library_notices()
    with warnings.catch_warnings(record=True) as after:
        ModelSummary(module)
    assert not any("not supported by the model summary" in str(warning.message) for warning in after)
