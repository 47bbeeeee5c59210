"""Lines every process of a distributed run would print alike, printed by the first alone (Lightning's rank-zero
utilities): Lightning's "Seed set to N" (logged by every process, each with its rank) and transformers' "Loading
weights" progress bar (drawn by every process loading the model).

Lightning reads the rank `rank_zero_only` tests from the launcher's environment when it is imported, and sets it
from its process group when the Trainer sets up. A process that joined its group after importing Lightning (a
launcher in Python, as the tests' gloo processes) took itself for the first until then: it printed the first lines
and claimed a run folder of its own (`cse.runs.resume.choose_run_folder`), which two processes then raced to remove.
"""

import torch
from lightning.fabric.utilities.seed import seed_everything
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only
from transformers.utils import logging as transformers_logging


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
