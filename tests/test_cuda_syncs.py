"""The CPU check of what would wait for a CUDA GPU (`cuda_syncs`), on operations whose behaviour on CUDA is known."""

from types import SimpleNamespace

import lightning.pytorch as pl
import pytest
import torch
from cuda_syncs import WaitingOperations, _waits, watching_training_steps
from torch.utils.data import DataLoader

aten = torch.ops.aten


def test_counts_each_operation_that_waits_for_the_device_and_none_that_queues():
    values = torch.randn(4, 3)
    with WaitingOperations() as watched:
        watched.watch(0)  # queued on CUDA: kernels whose output size the host knows
        (values @ values.T + 1).softmax(dim=1)
        torch.full((), 2.5) * torch.arange(4)
        torch.where(values > 0, values, 0.0).sum(dim=0)
        watched.watch(1)  # each waits on CUDA
        values.sum().item()
        bool(values.max() > 0)
        torch.tensor([1.0, 2.0])
        values[values > 0]
        values.nonzero()
        values.round().unique()
        watched.watch(None)
        values.sum().item()  # not watched

    assert watched.steps == [0, 1]
    reasons = {where.split(" (")[0] for where in watched.waits[1]}
    assert 0 not in watched.waits
    assert reasons == {
        "read as a Python value",
        "made from Python values",
        "indexed by a boolean mask",
        "sized by the device",
    }, watched.waits[1]
    assert sum(watched.waits[1].values()) == 6
    assert {where.split(" in ")[1].rsplit(":", 1)[0] for where in watched.waits[1]} == {__file__}  # the caller
    assert watched.own_code_waits() == {0: [], 1: []}  # this file is neither cse's nor Lightning's code


def _tensor_on(device: str, pinned: bool = False) -> SimpleNamespace:
    """What the check reads of a tensor (its device, whether it is in pinned host memory), on a machine without CUDA."""
    return SimpleNamespace(device=torch.device(device), is_pinned=lambda: pinned)


# (source, target, non_blocking, host memory pinned) -> waits: torch's copy synchronizes the stream unless the copy is
# non-blocking and its host side is pinned; copies that stay on one device are kernels like any other.
COPIES = [
    ("cpu", "cuda", False, False, True),
    ("cpu", "cuda", False, True, True),
    ("cpu", "cuda", True, False, True),
    ("cpu", "cuda", True, True, False),  # Lightning's batch transfer of a pinned batch
    ("cuda", "cpu", False, False, True),  # .cpu(), .tolist() through it
    ("cuda", "cpu", True, False, True),
    ("cuda", "cpu", True, True, False),
    ("cpu", "cpu", False, False, False),
    ("cuda", "cuda", False, False, False),
]


@pytest.mark.parametrize(("source", "target", "non_blocking", "pinned", "waits"), COPIES)
def test_a_copy_between_host_and_cuda_waits_unless_non_blocking_with_pinned_memory(
    source, target, non_blocking, pinned, waits
):
    host_side_pinned = {"pin_memory": pinned} if source == "cuda" else {}
    to_copy = _waits(
        aten._to_copy.default,
        (_tensor_on(source, pinned),),
        {"device": torch.device(target), "non_blocking": non_blocking, **host_side_pinned},
    )
    host = source if source == "cpu" else target
    copy_args = (_tensor_on(target, pinned and host == target), _tensor_on(source, pinned and host == source))
    copy_into = _waits(aten.copy_.default, (*copy_args, non_blocking), {})

    expected = "copied between host and device" if waits else None
    assert (to_copy, copy_into) == (expected, expected)


class _ReadsItsBatchOnTransfer(pl.LightningModule):
    """Reads each batch as a Python value while it is moved to the device: one wait per batch, in this file."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def transfer_batch_to_device(self, batch: torch.Tensor, device: torch.device, dataloader_idx: int) -> torch.Tensor:
        batch.sum().item()
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        return self.layer(batch).mean()

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        self.layer(batch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_a_training_step_is_watched_from_its_batchs_copy_to_the_device_and_validation_is_not(monkeypatch):
    trainer = pl.Trainer(
        max_steps=3, val_check_interval=2, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )  # fmt: skip
    batches = DataLoader(torch.ones(6, 2), batch_size=2)
    with watching_training_steps(_ReadsItsBatchOnTransfer, monkeypatch) as watched:
        trainer.fit(_ReadsItsBatchOnTransfer(), batches, batches)

    assert watched.steps == [0, 1, 2]  # the validation after step 2 transferred 3 batches, not watched
    for step in watched.steps:
        assert [where.split(" in ")[1].rsplit(":", 1)[0] for where in watched.waits[step]] == [__file__]
