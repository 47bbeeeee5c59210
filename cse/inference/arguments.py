"""Checks of the Python API's arguments: a wrong type or value is one `InputError` naming the argument, not a
TypeError from deep inside torch or a silently odd result (`batch_size=True` as 1, `threshold=2` finding nothing)."""

from numbers import Integral, Real

import torch

from cse.errors import InputError


def positive_int(value: object, name: str) -> int:
    """`value` as an int when it is a whole number >= 1 (not a bool); else one line naming `name`."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InputError(f"{name}: must be a whole number >= 1, got {value!r}")
    if value < 1:
        raise InputError(f"{name}: must be at least 1, got {value}")
    return int(value)


def cosine_threshold(value: object, name: str = "threshold") -> float | None:
    """A search threshold (`name`, as the caller calls it): None, or a cosine similarity in [-1, 1] (NaN, which no
    score reaches, is refused)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Real) or not -1.0 <= value <= 1.0:
        raise InputError(f"{name}: a cosine similarity in [-1, 1], got {value!r}")
    return float(value)


def default_device() -> torch.device:
    """CUDA when available, else Apple's MPS when available (a Mac's GPU, as sentence-transformers picks it), else the
    CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def torch_device(device: str | torch.device | int | None) -> torch.device:
    """The device to run on: `device` (an int N is `cuda:N`), or for None `default_device()`; a device torch does not
    know, or one this machine does not have, is one line."""
    if device is None:
        return default_device()
    cuda_index = isinstance(device, Integral) and not isinstance(device, bool)
    try:
        chosen = torch.device(f"cuda:{device}" if cuda_index else device)
    except (RuntimeError, TypeError, ValueError):
        raise InputError(f"device {device!r}: not a torch device (cpu, cuda, cuda:1, mps, ...)") from None
    if chosen.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise InputError(f"device {device!r}: CUDA is not available on this machine (use cpu)")
        if chosen.index is not None and chosen.index >= count:
            raise InputError(f"device {device!r}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device {device!r}: MPS is not available on this machine (use cpu)")
    return chosen
