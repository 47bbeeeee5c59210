"""`BackgroundCheckpointIO`: the file holds the checkpoint as it was when asked for, whole, in the order asked."""

import collections
import dataclasses
import threading
from pathlib import Path

import pytest
import torch
from lightning.fabric.plugins import CheckpointIO, TorchCheckpointIO
from lightning.fabric.utilities.apply_func import apply_to_collection
from lightning.pytorch.plugins.io import AsyncCheckpointIO

from cse.commands.fit import _with_default
from cse.runs import background_checkpoint_io
from cse.runs.background_checkpoint_io import BackgroundCheckpointIO, WholeFileCheckpointIO


class GatedCheckpointIO(WholeFileCheckpointIO):
    """Writes only once `gate` is set: a write that is still pending, as a slow disk would leave it."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        assert self.gate.wait(timeout=30)
        super().save_checkpoint(checkpoint, path, storage_options)


def _gated(writer: AsyncCheckpointIO) -> GatedCheckpointIO:
    base = GatedCheckpointIO()
    writer._checkpoint_io = base
    return base


def _checkpoint() -> dict:
    generator = torch.Generator().manual_seed(0)
    return {
        "state_dict": {"encoder.weight": torch.randn(4, 3, generator=generator)},
        "optimizer_states": [{"state": {0: {"exp_avg": torch.randn(4, 3, generator=generator)}}}],
        "global_step": 7,
    }


def test_the_file_holds_the_checkpoint_as_it_was_asked_for_while_training_changes_the_weights(tmp_path: Path):
    writer = BackgroundCheckpointIO()
    base = _gated(writer)
    checkpoint = _checkpoint()
    expected = {"weight": checkpoint["state_dict"]["encoder.weight"].clone(), "step": 7}
    writer.save_checkpoint(checkpoint, tmp_path / "last.ckpt")  # returns before the file is written
    assert not (tmp_path / "last.ckpt").exists()
    checkpoint["state_dict"]["encoder.weight"].add_(1.0)  # the next optimizer step, in place
    checkpoint["optimizer_states"][0]["state"][0]["exp_avg"].zero_()
    base.gate.set()
    writer.teardown()  # waits for the write
    saved = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert torch.equal(saved["state_dict"]["encoder.weight"], expected["weight"])
    assert saved["global_step"] == expected["step"]
    assert saved["optimizer_states"][0]["state"][0]["exp_avg"].abs().sum() > 0


@pytest.mark.parametrize("writer_class", [BackgroundCheckpointIO, AsyncCheckpointIO])
def test_a_checkpoint_removed_while_its_write_is_pending_stays_removed(tmp_path: Path, writer_class: type):
    # ModelCheckpoint removes the previous best right after asking for the new one; that file may not be written yet.
    writer = writer_class() if writer_class is BackgroundCheckpointIO else writer_class(TorchCheckpointIO())
    base = _gated(writer)
    old_best, new_best = tmp_path / "best-step=125.ckpt", tmp_path / "best-step=250.ckpt"
    writer.save_checkpoint(_checkpoint(), old_best)
    writer.save_checkpoint(_checkpoint(), new_best)
    writer.remove_checkpoint(old_best)
    base.gate.set()
    writer.teardown()
    assert new_best.exists()
    # Lightning's AsyncCheckpointIO removes at once, before the pending write recreates the file
    assert old_best.exists() == (writer_class is AsyncCheckpointIO)


def test_writes_keep_their_order_so_the_newest_last_checkpoint_wins(tmp_path: Path):
    writer = BackgroundCheckpointIO()
    base = _gated(writer)
    for step in (500, 625, 1000):
        writer.save_checkpoint({"global_step": step}, tmp_path / "last.ckpt")
    base.gate.set()
    writer.teardown()
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["global_step"] == 1000


def test_a_failed_write_keeps_the_previous_file_and_is_raised_after_teardown(tmp_path: Path):
    path = tmp_path / "last.ckpt"
    writer = BackgroundCheckpointIO()
    writer.save_checkpoint({"global_step": 500}, path)
    writer.save_checkpoint({"global_step": 1000, "unpicklable": lambda: None}, path)
    writer.teardown()  # waits, and does not raise: Lightning's teardown goes on past it
    with pytest.raises(Exception, match="pickle"):
        writer.raise_write_error()
    with pytest.raises(Exception, match="pickle"):  # and so does the next write asked for
        writer.save_checkpoint({"global_step": 1500}, path)
    assert torch.load(path, weights_only=True)["global_step"] == 500
    assert sorted(file.name for file in tmp_path.iterdir()) == ["last.ckpt"]  # no temporary file left behind


def test_the_snapshot_is_a_host_copy_sharing_no_memory_with_the_weights(tmp_path: Path):
    writer = BackgroundCheckpointIO()
    seen = {}

    class Recorder(CheckpointIO):
        def save_checkpoint(self, checkpoint, path, storage_options=None):
            seen.update(checkpoint["state_dict"])

        def load_checkpoint(self, path, map_location=None):
            raise NotImplementedError

        def remove_checkpoint(self, path):
            raise NotImplementedError

    writer._checkpoint_io = Recorder()
    weight = torch.randn(3)
    writer.save_checkpoint({"state_dict": {"w": weight}}, tmp_path / "x.ckpt")
    writer.teardown()
    assert seen["w"].device.type == "cpu" and seen["w"].data_ptr() != weight.data_ptr()
    assert torch.equal(seen["w"], weight)


def _model_checkpoint(module: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int, batches: int) -> dict:
    """As Lightning's checkpoint holds them: the weights detached (new tensor objects at every call), AdamW's state,
    the optimizer steps and the training batches started."""
    progress = {"total": {"ready": batches, "started": batches, "processed": batches, "completed": batches}}
    return {
        "state_dict": module.state_dict(),
        "optimizer_states": [optimizer.state_dict()],
        "global_step": step,
        "loops": {"fit_loop": {"epoch_loop.batch_progress": progress}},
    }


def _counted_host_copies(monkeypatch) -> list[torch.Tensor]:
    copied: list[torch.Tensor] = []
    original = background_checkpoint_io._host_copy

    def counted(tensor: torch.Tensor) -> torch.Tensor:
        copied.append(tensor)
        return original(tensor)

    monkeypatch.setattr(background_checkpoint_io, "_host_copy", counted)
    return copied


def _trained_linear(fused: bool) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    module = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(module.parameters(), lr=0.1, fused=fused)
    module(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    return module, optimizer


@pytest.mark.parametrize("fused", [False, True])
def test_best_and_last_of_one_step_share_one_host_copy_until_the_next_batch(tmp_path: Path, monkeypatch, fused):
    """A new best writes best-step=N.ckpt, then last.ckpt: the second copies nothing while the first write is pending;
    after the next batch's optimizer step (the fused kernel moves no version counter), everything is copied again."""
    copied = _counted_host_copies(monkeypatch)
    module, optimizer = _trained_linear(fused)
    writer = BackgroundCheckpointIO()
    base = _gated(writer)
    tensors = 2 + 2 * 3  # weight and bias; exp_avg, exp_avg_sq and step of each
    writer.save_checkpoint(_model_checkpoint(module, optimizer, 5, 10), tmp_path / "best-step=5.ckpt")
    assert len(copied) == tensors
    writer.save_checkpoint(_model_checkpoint(module, optimizer, 5, 10), tmp_path / "last.ckpt")
    assert len(copied) == tensors, "the same position's weights and state: shared"
    expected = {name: value.clone() for name, value in module.state_dict().items()}
    module(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    writer.save_checkpoint(_model_checkpoint(module, optimizer, 6, 11), tmp_path / "step=6.ckpt")
    assert len(copied) == 2 * tensors, "a batch trained in between: copied again"
    base.gate.set()
    writer.teardown()
    for name in ("best-step=5.ckpt", "last.ckpt"):
        saved = torch.load(tmp_path / name, weights_only=True)["state_dict"]
        assert all(torch.equal(saved[name], value) for name, value in expected.items())
    saved = torch.load(tmp_path / "step=6.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(saved[name], value) for name, value in module.state_dict().items())
    assert not torch.equal(saved["weight"], expected["weight"])


def test_copies_are_shared_only_at_one_position_unchanged_while_a_write_holds_them(tmp_path: Path, monkeypatch):
    copied = _counted_host_copies(monkeypatch)
    module, optimizer = _trained_linear(fused=False)
    writer = BackgroundCheckpointIO()
    base = _gated(writer)
    writer.save_checkpoint(_model_checkpoint(module, optimizer, 5, 10), tmp_path / "a.ckpt")
    first = len(copied)
    writer.save_checkpoint(_model_checkpoint(module, optimizer, 5, 11), tmp_path / "b.ckpt")
    assert len(copied) == 2 * first, "a micro-batch started in between (gradient accumulation): nothing shared"
    with torch.no_grad():
        module.bias.add_(1.0)  # an in-place change at the same position, e.g. by a callback: its version moves
    writer.save_checkpoint(_model_checkpoint(module, optimizer, 5, 11), tmp_path / "c.ckpt")
    assert len(copied) == 2 * first + 1 and copied[-1].data_ptr() == module.bias.data_ptr(), "only the bias"
    writer.save_checkpoint({"state_dict": module.state_dict(), "global_step": 5}, tmp_path / "d.ckpt")
    assert len(copied) == 2 * first + 3, "no loop state, no position: nothing shared"
    base.gate.set()
    writer.teardown()  # all written: their copies are freed
    writer.save_checkpoint(_model_checkpoint(module, optimizer, 5, 11), tmp_path / "e.ckpt")
    writer.teardown()
    assert len(copied) == 3 * first + 3, "no pending write holds the copies any more: copied again"
    for name in ("c.ckpt", "e.ckpt"):
        assert torch.equal(torch.load(tmp_path / name, weights_only=True)["state_dict"]["bias"], module.bias)


@dataclasses.dataclass
class _State:
    tensor: torch.Tensor
    name: str


def test_every_tensor_is_replaced_and_everything_else_kept_as_apply_to_collection_would():
    Pair = collections.namedtuple("Pair", "first second")
    state_dict = collections.OrderedDict(w=torch.ones(2), b=torch.zeros(1))
    state_dict._metadata = {"": {"version": 1}}  # what load_state_dict reads
    files = b"x" * 1000  # tokenizer files, in every cse checkpoint
    data = {
        "state_dict": state_dict,
        "optimizer_states": [{"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"lr": 1e-3}]}],
        "pair": Pair(torch.full((2,), 2.0), (torch.full((1,), 3.0), "text", None, 4)),
        "state": _State(torch.full((3,), 5.0), "kept"),
        "assets": {"tokenizer_files": {"vocab.txt": files}},
    }
    replaced = background_checkpoint_io._with_tensors_replaced(data, lambda tensor: tensor + 10)
    expected = apply_to_collection(data, torch.Tensor, lambda tensor: tensor + 10)
    flat, flat_expected = (
        [leaf for leaf in torch.utils._pytree.tree_leaves(tree) if isinstance(leaf, torch.Tensor)]
        for tree in ({**replaced, "state": replaced["state"].tensor}, {**expected, "state": expected["state"].tensor})
    )
    assert len(flat) == 6 and all(torch.equal(a, b) for a, b in zip(flat, flat_expected, strict=True))
    assert replaced["assets"]["tokenizer_files"]["vocab.txt"] is files, "bytes are not walked one by one"
    assert type(replaced["state_dict"]) is collections.OrderedDict
    assert replaced["state_dict"]._metadata == {"": {"version": 1}}
    assert type(replaced["pair"]) is Pair and replaced["pair"].second[1:] == ("text", None, 4)
    assert replaced["state"].name == "kept" and replaced["optimizer_states"][0]["param_groups"] == [{"lr": 1e-3}]
    assert torch.equal(data["state_dict"]["w"], torch.ones(2)), "the checkpoint itself is not changed"


def test_a_local_checkpoint_is_written_by_torch_save_and_reads_back_equal(tmp_path: Path):
    path = tmp_path / "run" / "checkpoints" / "best-step=3.ckpt"  # folders made as Lightning's writer makes them
    checkpoint = _checkpoint()
    WholeFileCheckpointIO().save_checkpoint(checkpoint, path)
    saved = TorchCheckpointIO().load_checkpoint(path, weights_only=True)
    assert torch.equal(saved["state_dict"]["encoder.weight"], checkpoint["state_dict"]["encoder.weight"])
    assert sorted(file.name for file in path.parent.iterdir()) == [path.name]


def test_fit_writes_in_the_background_unless_a_checkpoint_io_is_given():
    (added,) = _with_default(None, CheckpointIO, BackgroundCheckpointIO)
    assert isinstance(added, BackgroundCheckpointIO)
    own = TorchCheckpointIO()
    assert _with_default([own], CheckpointIO, BackgroundCheckpointIO) == [own]
    other = object()
    plugins = _with_default(other, CheckpointIO, BackgroundCheckpointIO)
    assert plugins[0] is other and isinstance(plugins[1], BackgroundCheckpointIO)
