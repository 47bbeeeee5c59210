"""How long writing a full checkpoint (weights and AdamW state) stops training: Lightning's writer against cse's.

The model's weights and an AdamW state (one step taken) are written with each writer in turn, as `cse fit` writes
a new best or a periodic checkpoint:
- `lightning`: Lightning's `TorchCheckpointIO` (pickled into memory, copied, written to `$TMPDIR`, moved);
- `whole-file`: `cse.runs.background_checkpoint_io.WholeFileCheckpointIO` (`torch.save` beside the target, renamed);
- `background`: `BackgroundCheckpointIO`, which `cse fit` uses: a host copy, then `whole-file` in a thread;
- `new best`: what a validation that finds a new best model asks of it: `best-step=N.ckpt`, then `last.ckpt` of the
  same step (which shares the first one's host copy).
While a write is under way a stand-in for training runs on the same device (small tensor operations, bound by the
host as a launch-bound training step is); `training lost` is the time that loop lost against its idle speed, so a
writer that blocks counts in full and a thread that takes the interpreter lock counts too. Each writer runs
`--repeats` times in turn; the table gives means. Every file is read back and compared with the checkpoint.

    python scripts/checkpoint_writes.py --random-init-config bert-base --device cuda
"""

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
from benchmark_model import add_model_arguments, model_directory
from lightning.fabric.plugins import CheckpointIO, TorchCheckpointIO
from transformers import AutoModel

from cse.runs.background_checkpoint_io import BackgroundCheckpointIO, WholeFileCheckpointIO

WRITERS: dict[str, Callable[[], CheckpointIO]] = {
    "lightning": TorchCheckpointIO,
    "whole-file": WholeFileCheckpointIO,
    "background": BackgroundCheckpointIO,
    "new best": BackgroundCheckpointIO,
}
FILES = {"new best": ("best", "last")}  # the others write one file


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(parser)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=2, help="writes per writer, taken in turn")
    parser.add_argument("--dir", type=Path, default=Path("."), help="where the checkpoints are written (then removed)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if not args.dir.is_dir():  # checked before the model loads; the script measures writes to a disk of the user's
        parser.error(f"--dir {args.dir}: {'not a folder' if args.dir.exists() else 'no such folder'}")
    return args


def full_checkpoint(model_dir: str, device: str) -> dict:
    """Weights and AdamW state after one step, on `device`, as Lightning's checkpoint holds them."""
    model = AutoModel.from_pretrained(model_dir).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3.0e-5)
    for parameter in model.parameters():
        parameter.grad = torch.randn_like(parameter)
    optimizer.step()
    progress = {"total": {"ready": 1, "started": 1, "processed": 1, "completed": 1}}  # one batch trained
    return {
        "state_dict": model.state_dict(),
        "optimizer_states": [optimizer.state_dict()],
        "global_step": 1,
        "loops": {"fit_loop": {"epoch_loop.batch_progress": progress}},
    }


class TrainingStandIn:
    """Small tensor operations on the device, as many as the host can queue: a launch-bound training loop."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.x = torch.randn(64, 64, device=device)
        self.rate = self._operations_per_second()

    def run(self, count: int) -> None:
        for _ in range(count):
            self.x = torch.tanh(self.x @ self.x)

    def lost_seconds(self, window: float, operations: int) -> float:
        return max(0.0, window - operations / self.rate)

    def _operations_per_second(self) -> float:
        self.run(200)
        start = time.perf_counter()
        self.run(5000)
        self.wait()
        return 5000 / (time.perf_counter() - start)

    def wait(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()


def time_write(name: str, checkpoint: dict, paths: list[Path], training: TrainingStandIn) -> tuple[float, float, float]:
    """(seconds the calls blocked, seconds until the files were complete, training seconds lost)."""
    writer = WRITERS[name]()
    training.wait()
    start = time.perf_counter()
    for path in paths:
        writer.save_checkpoint(checkpoint, path)
    blocked = time.perf_counter() - start
    operations = 0
    if isinstance(writer, BackgroundCheckpointIO):
        waiting = threading.Thread(target=writer.teardown)  # returns once the queued write is done
        waiting.start()
        while waiting.is_alive():
            training.run(50)
            operations += 50
    training.wait()
    done = time.perf_counter() - start
    return blocked, done, training.lost_seconds(done, operations)


def same_checkpoint(path: Path, checkpoint: dict) -> bool:
    saved = torch.load(path, map_location="cpu", weights_only=True)  # Lightning's writer keeps CUDA tensors
    return all(torch.equal(saved["state_dict"][key], value.cpu()) for key, value in checkpoint["state_dict"].items())


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)
    with model_directory(args) as model_dir:
        checkpoint = full_checkpoint(model_dir, args.device)
    training = TrainingStandIn(args.device)
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in WRITERS}
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        equal, size = True, 0
        for repeat in range(args.repeats):
            for name in WRITERS:
                paths = [Path(directory) / f"{name}-{file}-{repeat}.ckpt" for file in FILES.get(name, ("one",))]
                results[name].append(time_write(name, checkpoint, paths, training))
                for path in paths:
                    equal &= same_checkpoint(path, checkpoint)
                    size = path.stat().st_size
                    path.unlink()
    print(f"{args.device}, full checkpoint of {size / 1e9:.2f} GB, {args.repeats} writes each, means")
    print(f"{'':12s} {'blocked s':>10s} {'written s':>10s} {'training lost s':>16s}")
    for name, rows in results.items():
        blocked, done, lost = (statistics.mean(column) for column in zip(*rows, strict=True))
        print(f"{name:12s} {blocked:10.2f} {done:10.2f} {lost:16.2f}")
    print(f"files read back equal to the checkpoint: {'yes' if equal else 'NO'}")
    lost = {name: statistics.mean(row[2] for row in rows) for name, rows in results.items()}
    print(f"training lost per checkpoint, background / lightning: {lost['background'] / lost['lightning']:.2f}")
    print(f"training lost per new best (2 files), new best / background: {lost['new best'] / lost['background']:.2f}")


if __name__ == "__main__":
    main()
