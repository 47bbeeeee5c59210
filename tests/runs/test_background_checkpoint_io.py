"""`BackgroundCheckpointIO`: the file holds the checkpoint as it was when asked for, whole, in the order asked."""

import threading
from pathlib import Path

import pytest
import torch
from lightning.fabric.plugins import CheckpointIO, TorchCheckpointIO
from lightning.pytorch.plugins.io import AsyncCheckpointIO

from cse.commands.fit import _with_checkpoint_writer
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


def test_a_local_checkpoint_is_written_by_torch_save_and_reads_back_equal(tmp_path: Path):
    path = tmp_path / "run" / "checkpoints" / "best-step=3.ckpt"  # folders made as Lightning's writer makes them
    checkpoint = _checkpoint()
    WholeFileCheckpointIO().save_checkpoint(checkpoint, path)
    saved = TorchCheckpointIO().load_checkpoint(path, weights_only=True)
    assert torch.equal(saved["state_dict"]["encoder.weight"], checkpoint["state_dict"]["encoder.weight"])
    assert sorted(file.name for file in path.parent.iterdir()) == [path.name]


def test_fit_writes_in_the_background_unless_a_checkpoint_io_is_given():
    (added,) = _with_checkpoint_writer(None)
    assert isinstance(added, BackgroundCheckpointIO)
    own = TorchCheckpointIO()
    assert _with_checkpoint_writer([own]) == [own]
    other = object()
    plugins = _with_checkpoint_writer(other)
    assert plugins[0] is other and isinstance(plugins[1], BackgroundCheckpointIO)
