"""Lines every process of a distributed run would print alike, printed by the first alone (Lightning's rank-zero
utilities): Lightning's "Seed set to N" (logged by every process, each with its rank) and transformers' "Loading
weights" progress bar (drawn by every process loading the model).

A refusal of the command line (bad input, before the Trainer exists) is also met alike by every process on a machine;
`prints_refusal` says which of them prints it.

Lightning reads the rank `rank_zero_only` tests from the launcher's environment when it is imported, and sets it
from its process group when the Trainer sets up. A process that joined its group after importing Lightning (a
launcher in Python, as the tests' gloo processes) took itself for the first until then: it printed the first lines
and claimed a run folder of its own (`cse.runs.resume.choose_run_folder`), which two processes then raced to remove.
"""

import os

import torch
from lightning.fabric.utilities.seed import seed_everything
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only
from transformers.utils import logging as transformers_logging

from cse.every_process_error import EveryProcessError


def quiet_other_processes() -> None:
    """Set `rank_zero_only.rank` to this process's rank in its group, if it has joined one; on every process but the
    first, turn transformers' progress bars off. Call before anything prints or claims a folder."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank_zero_only.rank = torch.distributed.get_rank()
    if rank_zero_only.rank != 0:
        transformers_logging.disable_progress_bar()


def seed_every_process(seed: int | None) -> int:
    """`seed_everything(seed, workers=True)` in this process, as LightningCLI seeds (None: Lightning's choice), with
    its line printed by the first process alone. Returns the seed set."""
    seed = seed_everything(seed, workers=True, verbose=False)
    rank_zero_info(f"Seed set to {seed}")
    return seed


def prints_refusal(error: Exception) -> bool:
    """Whether this process prints `error`'s one line: an `EveryProcessError` (found by any process, raised in all)
    where its rank is 0; another refused before the processes joined their group (torchrun's processes each reading
    the same command line and files) by the first process of each machine alone, torchrun's `LOCAL_RANK` 0 (when its
    `WORLD_SIZE` is above 1); any other wherever it is raised, as it may be this process's alone."""
    if isinstance(error, EveryProcessError):
        return error.rank == 0
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return True
    return os.environ.get("WORLD_SIZE", "1") == "1" or os.environ.get("LOCAL_RANK", "0") == "0"
