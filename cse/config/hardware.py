"""The Trainer's accelerator and precision against the hardware at hand: a GPU asked for must be there, fp16 needs
a CUDA GPU, and bfloat16 is fast only on a GPU with bfloat16 tensor cores (compute capability 8.0 and later: A100,
RTX 30xx, H100).

A GPU asked for where torch sees none is an error naming the key and torch's build (a CPU build of torch is the usual
cause; Lightning says only "No supported gpu backend found!"). Without a CUDA GPU, Lightning would silently run
`16-mixed` in bfloat16 on a CPU: the CLI says so in one line and runs in `32-true` (on Apple's MPS too, where cse's
fp16 path is untested; Lightning takes `gpu` and `auto` for MPS wherever it finds it). `64-true` on MPS, which has no
float64, is an error: torch would refuse to move the model there. On an older GPU (T4, V100: 7.x) torch runs
`bf16-mixed` without complaint, in emulation, slower than `16-mixed` (fp16 with loss scaling, the paper's): the CLI
warns in one line and runs as asked. Whatever else Lightning refuses while it sorts out the accelerator, devices,
strategy and precision (devices -1 on a CPU, FSDP without a GPU, a TPU without torch_xla, DDP on MPS) is one line too,
Lightning's reason after the settings it was given. Processes started by torchrun or SLURM must be the ones
`trainer.devices` × `trainer.num_nodes` count: with `devices: 1` (the recipes') Lightning gives each process its own
single-device run, all on the first GPU.
"""

import os
import traceback
from pathlib import Path

import torch
from jsonargparse import Namespace
from lightning.fabric.plugins.environments import (
    LSFEnvironment,
    MPIEnvironment,
    SLURMEnvironment,
    TorchElasticEnvironment,
)
from lightning.pytorch.accelerators import MPSAccelerator
from lightning.pytorch.utilities import rank_zero_info

from cse.errors import InputError, one_line

HALF_PRECISIONS = ("16-mixed", "16", "16-true")
BFLOAT16_PRECISIONS = ("bf16-mixed", "bf16", "bf16-true")
DOUBLE_PRECISIONS = ("64-true", "64")
HARDWARE_KEYS = ("accelerator", "devices", "num_nodes", "strategy", "precision")  # what Lightning's connector sorts out
CONNECTOR_FILE = "accelerator_connector.py"  # lightning/pytorch/trainer/connectors/: where the Trainer sorts them out
FIRST_BFLOAT16_CAPABILITY = 8  # compute capability (major) of NVIDIA's first GPUs with bfloat16 tensor cores


def check_gpu_present(accelerator: object) -> None:
    """Raise `InputError` if `trainer.accelerator` asks for a GPU and torch sees none: `cuda` a CUDA GPU, `gpu` a
    CUDA GPU or Apple's MPS (Lightning's choice for `gpu` on a Mac)."""
    if accelerator not in ("gpu", "cuda") or torch.cuda.is_available():
        return
    if accelerator == "gpu" and MPSAccelerator.is_available():
        return
    cpu_build = torch.version.cuda is None and torch.version.hip is None
    build = f"torch {torch.__version__} is built without CUDA" if cpu_build else "no GPU is visible"
    raise InputError(f"trainer.accelerator: {accelerator}, but torch sees no CUDA GPU ({build})")


def check_launched_processes(devices: object, num_nodes: int | None) -> None:
    """Raise `InputError` if torchrun or SLURM started a number of processes other than `trainer.devices` (an integer
    or a list of GPUs) × `trainer.num_nodes`; `auto` and -1 are left to Lightning, which counts the GPUs itself. Or if
    several nodes are asked for where nothing can join them: no launcher, and no MASTER_ADDR for Lightning's own."""
    launched = _launched_processes()
    if launched is None and (num_nodes or 1) > 1 and "MASTER_ADDR" not in os.environ and not _other_launcher():
        raise InputError(
            f"trainer.num_nodes: {num_nodes}, but neither torchrun nor SLURM started this process and MASTER_ADDR is "
            "not set: it would wait for machines that never join; start it on every machine with torchrun or srun "
            "(docs/multi_gpu.md)"
        )
    if launched is None or isinstance(devices, bool) or not isinstance(devices, int | list) or devices == -1:
        return
    launcher, processes = launched
    nodes = num_nodes or 1
    expected = (devices if isinstance(devices, int) else len(devices)) * nodes
    if expected != processes:
        raise InputError(
            f"trainer.devices: {devices} × trainer.num_nodes {nodes} is {expected} process(es), but {launcher} started "
            f"{processes}: set trainer.devices to the processes per node, or each would train alone"
        )


def _other_launcher() -> bool:
    """Whether LSF or MPI, which Lightning also reads ranks and addresses from, started this process."""
    return LSFEnvironment.detect() or MPIEnvironment.detect()


def _launched_processes() -> tuple[str, int] | None:
    """(launcher, processes started) when torchrun (WORLD_SIZE) or SLURM's srun (SLURM_NTASKS) started this process."""
    if TorchElasticEnvironment.detect():
        return "torchrun", int(os.environ["WORLD_SIZE"])
    if SLURMEnvironment.detect():
        return "SLURM", int(os.environ["SLURM_NTASKS"])
    return None


def precision_for_hardware(precision: str | int, accelerator: object) -> str | int:
    """`precision` as the Trainer should run it here: `32-true` for fp16 without a CUDA GPU, unchanged otherwise (with
    a warning for bfloat16 on a GPU without its tensor cores); `InputError` for float64 on Apple's MPS."""
    if str(precision) in DOUBLE_PRECISIONS and _mps_requested(accelerator):
        raise InputError(
            f"trainer.precision: {precision}, but Apple's MPS (trainer.accelerator: {accelerator}) has no float64; use "
            "32-true, or trainer.accelerator cpu to train in float64"
        )
    cuda = _cuda_requested(accelerator)
    if str(precision) in HALF_PRECISIONS and not cuda:  # `--trainer.precision 16` parses as the integer 16
        rank_zero_info(f"precision {precision} needs a CUDA GPU; running in 32-true")
        return "32-true"
    if precision in BFLOAT16_PRECISIONS and cuda and torch.version.hip is None:
        for index in range(torch.cuda.device_count()):
            major, minor = torch.cuda.get_device_capability(index)
            if major < FIRST_BFLOAT16_CAPABILITY:
                rank_zero_info(
                    f"warning: trainer.precision: {precision} on GPU {index} ({torch.cuda.get_device_name(index)}, "
                    f"compute capability {major}.{minor}), which has no bfloat16 tensor cores: torch emulates "
                    "bfloat16 there, slower than 16-mixed"
                )
                break
    return precision


def _cuda_requested(accelerator: object) -> bool:
    """Whether the trainer will run on a CUDA GPU: `cuda`, `gpu` without MPS, or `auto` with a GPU and without MPS."""
    if accelerator == "cuda":
        return True
    if accelerator not in ("gpu", "auto", None) or MPSAccelerator.is_available():
        return False
    return accelerator == "gpu" or torch.cuda.is_available()


def _mps_requested(accelerator: object) -> bool:
    """Whether the trainer will run on Apple's MPS: `mps`, or `gpu`/`auto` where Lightning finds it."""
    return accelerator == "mps" or (accelerator in ("gpu", "auto", None) and MPSAccelerator.is_available())


def refused_hardware_settings(error: Exception, trainer: Namespace | dict) -> InputError | None:
    """`error` as one line after the `trainer` settings it refuses, when Lightning's accelerator connector raised it
    while building the Trainer (a TypeError, a ValueError, a missing optional package: tracebacks otherwise); None for
    an error from anywhere else."""
    frames = traceback.extract_tb(error.__traceback__)
    if not any(Path(frame.filename).name == CONNECTOR_FILE and "lightning" in frame.filename for frame in frames):
        return None
    settings = ", ".join(f"trainer.{key} {_setting(trainer.get(key))}" for key in HARDWARE_KEYS)
    return InputError(f"{settings}: {one_line(error)}")


def _setting(value: object) -> str:
    """A setting as the user gave it: a name or number as is, an object (a Strategy instance) by its class."""
    return str(value) if value is None or isinstance(value, str | int | float | list) else type(value).__name__
