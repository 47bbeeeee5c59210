"""The operations of a training step that would make the host wait for a CUDA GPU, seen on the CPU (imported as
`cuda_syncs`: pytest puts tests/ on sys.path).

A step that never waits lets the host queue the next steps' kernels while the GPU runs this one. On the CPU nothing
waits, so the step's ATen operations are watched instead (a `TorchDispatchMode`, below every Python wrapper) for those
that wait on CUDA: reading a tensor as a Python value (`.item()`, `bool()`, `float()`, `.tolist()`), making a tensor
from Python values (`torch.tensor(x, device=cuda)` is a copy that waits for the stream, as Lightning's `self.log` of a
Python number does), and results whose size only the device knows (`nonzero`, boolean masks, `unique`, ...). Copies
between the host and a CUDA device are seen where the tensors are on one (`pytest -m gpu`): on one CPU they are not
copies.
"""

import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

# Each waits for the device on CUDA, whatever its arguments.
WAITING = {
    aten._local_scalar_dense.default: "read as a Python value",
    aten.lift_fresh.default: "made from Python values",
    aten.nonzero.default: "sized by the device",
    aten.masked_select.default: "sized by the device",
    aten.equal.default: "compared into a Python bool",
    aten.is_nonzero.default: "read as a Python bool",
}
# Sized by the device: unique and friends, and repeat_interleave without output_size.
WAITING_PREFIXES = ("unique", "_unique", "unique_consecutive")
OWN_CODE = (f"{Path(__file__).parents[1] / 'cse'}/", "/lightning/")  # cse's and Lightning's code
TORCH = f"{Path(torch.__file__).parent}/"


def _waits(func: Any, args: tuple, kwargs: dict) -> str | None:
    """Why `func(*args, **kwargs)` waits for a CUDA device, or None."""
    if func in WAITING:
        return WAITING[func]
    name = func.__name__.split(".")[0]
    if name.startswith(WAITING_PREFIXES):
        return "sized by the device"
    if func is aten.repeat_interleave.Tensor and kwargs.get("output_size") is None:
        return "sized by the device"
    if func is aten.index.Tensor and any(index is not None and index.dtype == torch.bool for index in args[1]):
        return "indexed by a boolean mask"
    if _copies_between_host_and_cuda_waiting(func, args, kwargs):
        return "copied between host and device"
    return None


def _copies_between_host_and_cuda_waiting(func: Any, args: tuple, kwargs: dict) -> bool:
    """Whether `func` copies between host memory and a CUDA device in a way that waits: torch synchronizes the stream
    after a blocking copy, and a non-blocking one is asynchronous only from or to pinned host memory."""
    if func is aten._to_copy.default:  # tensor.to(device), .cpu(), .cuda(): a new tensor on `device`
        source, target = args[0].device, torch.device(kwargs.get("device") or args[0].device)
        non_blocking = kwargs.get("non_blocking", False)
    elif func is aten.copy_.default:  # target.copy_(source, non_blocking)
        target, source = args[0].device, args[1].device
        non_blocking = args[2] if len(args) > 2 else kwargs.get("non_blocking", False)
    else:
        return False
    if {source.type, target.type} != {"cpu", "cuda"}:
        return False
    if not non_blocking:
        return True
    if func is aten._to_copy.default:  # the host side: the tensor copied from, or the new one (pinned if asked)
        return not (args[0].is_pinned() if source.type == "cpu" else kwargs.get("pin_memory", False))
    return not (args[1] if source.type == "cpu" else args[0]).is_pinned()


class WaitingOperations(TorchDispatchMode):
    """Counts, per training step, the operations that would wait for a CUDA device, by the file that called them.

    `watch(step)` starts watching a step and `watch(None)` stops; `steps` lists the steps watched. `waits[step]` counts
    `"<why> (<op>) in <file>:<line>"`, the file being the first caller outside torch.
    """

    def __init__(self) -> None:
        super().__init__()
        self.step: int | None = None
        self.steps: list[int] = []
        self.waits: dict[int, Counter] = {}

    def watch(self, step: int | None) -> None:
        self.step = step
        if step is not None:
            self.steps.append(step)

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if self.step is not None and (why := _waits(func, args, kwargs)):
            self.waits.setdefault(self.step, Counter())[f"{why} ({func}) in {_caller()}"] += 1
        return func(*args, **kwargs)

    def own_code_waits(self) -> dict[int, list[str]]:
        """The waits in cse's or Lightning's code of each watched step (an empty list: none)."""
        return {
            step: sorted(where for where in self.waits.get(step, ()) if any(own in where for own in OWN_CODE))
            for step in self.steps
        }


def _caller() -> str:
    """`file:line` of the innermost frame outside torch and this module."""
    frame = sys._getframe(2)
    while frame is not None and (frame.f_code.co_filename.startswith(TORCH) or frame.f_code.co_filename == __file__):
        frame = frame.f_back
    return f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame is not None else "?"


@contextmanager
def watching_training_steps(module_class: type, monkeypatch: Any) -> Iterator[WaitingOperations]:
    """Watches every training step of `module_class` (a LightningModule class) in the fits run inside the block: the
    copy of its batch to the device (`transfer_batch_to_device`, from the loader's pinned memory on CUDA), its
    `on_train_batch_start`, `training_step`, backward, clipping, the optimizer step, the callbacks' and its own
    `on_train_batch_end`. Steps are numbered by `trainer.global_step` at the start.
    """
    mode = WaitingOperations()
    transfer, end = module_class.transfer_batch_to_device, module_class.on_train_batch_end

    def transferred(self, *args: Any, **kwargs: Any) -> Any:
        if self.trainer.training:  # not a validation batch
            mode.watch(self.trainer.global_step)
        return transfer(self, *args, **kwargs)

    def ended(self, *args: Any, **kwargs: Any) -> Any:
        result = end(self, *args, **kwargs)
        mode.watch(None)
        return result

    monkeypatch.setattr(module_class, "transfer_batch_to_device", transferred)
    monkeypatch.setattr(module_class, "on_train_batch_end", ended)
    with mode:
        yield mode
