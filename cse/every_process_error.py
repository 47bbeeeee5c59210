"""Bad input that some processes of a distributed run found, raised in all of them, and printed by the first alone.

A process that stops on its own leaves the others waiting in their next collective: Lightning's barrier after
`prepare_data` (which only the first process of each machine runs) ends in a traceback per process on gloo, or waits
for the process group's timeout on NCCL. Each process instead passes its error, if any, to `raise_in_every_process`,
which all of them call at the same point.
"""

import torch
from lightning.pytorch import Trainer

from cse.errors import InputError


class EveryProcessError(InputError):
    """An `InputError` raised in every process of the run, with the first message any of them found.

    Attributes:
        rank: this process's global rank; `cse` prints the error where it is 0, so the line comes once.
    """

    def __init__(self, message: str, rank: int) -> None:
        super().__init__(message)
        self.rank = rank


def raise_in_every_process(error: InputError | None, trainer: Trainer | None) -> None:
    """Raise `error` alone, or in a distributed run the first process's error in every process if any has one.

    Every process of the run must call it at the same point (a collective).

    Raises:
        InputError: `error`, without a distributed trainer.
        EveryProcessError: in every process, when any of them has an error.
    """
    if trainer is None or trainer.world_size == 1 or not torch.distributed.is_initialized():
        if error is not None:
            raise error
        return
    messages: list[str | None] = [None] * trainer.world_size
    torch.distributed.all_gather_object(messages, None if error is None else str(error))
    found = next((message for message in messages if message is not None), None)
    if found is not None:
        raise EveryProcessError(found, trainer.global_rank) from error
