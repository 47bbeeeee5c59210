"""Lines the libraries under `cse` print that its user can do nothing about, left out of its output.

- Lightning 2.6 advertises its cloud logger at every Trainer it builds (`💡 Tip: ... litlogger`), among the lines
  that matter (cse's `val at step N` lines come through the same logger, which keeps them);
- on an Ampere or later GPU, Lightning 2.6 advises `torch.set_float32_matmul_precision('medium' | 'high')` (TF32) at
  every Trainer: cse leaves float32 matmuls in full precision on purpose, so that validation and the similarity
  matrix are exact float32 as in SimCSE's evaluation (docs/gpu.md), and no cse setting changes it;
- Lightning 2.6's model summary, under `16-mixed` or `bf16-mixed`, says it counts the weights' size in 32 bits as if
  that were wrong: mixed precision keeps float32 weights;
- torch 2.13 deprecates the `LeafSpec` that Lightning 2.6 still builds when it flattens a batch (a `FutureWarning`
  naming a file of Lightning's own);
- huggingface_hub's retries offline, which would bury the error that follows them;
- what transformers and sentence-transformers log while loading a model that cse then refuses (`held_library_lines`:
  a load report of the keys it initialised anew, before the one line that says why the model cannot be used).

Two more, only where they say nothing to act on: Lightning's "Checkpoint directory ... exists and is not empty" when a
run resumes in its own folder (`quiet_resumed_checkpoint_folder`), and its "Found N module(s) in eval mode" when the
N are exactly those a method keeps in eval mode on purpose (`expect_modules_in_eval_mode`).
"""

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

LIGHTNING_TIP = "💡 Tip:"
TF32_ADVICE = "set `torch.set_float32_matmul_precision("


def quiet_library_notices() -> None:
    """Leave the notices above out of this process's output (idempotent)."""
    lightning = logging.getLogger("lightning.pytorch.utilities.rank_zero")  # Lightning's rank-zero lines
    if _drop_tips not in lightning.filters:
        lightning.addFilter(_drop_tips)
    warnings.filterwarnings(
        "ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning
    )
    warnings.filterwarnings(
        "ignore", message=r"Precision (16|bf16)-mixed is not supported by the model summary", category=UserWarning
    )
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)


def quiet_resumed_checkpoint_folder() -> None:
    """Leave out Lightning's warning that the checkpoint folder holds files: a resumed run continues its own."""
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")


def expect_modules_in_eval_mode(count: int) -> None:
    """Leave out Lightning's warning at the start of training when exactly `count` modules are in eval mode (those a
    method keeps so on purpose): one more in eval mode changes the count, and the warning stays."""
    warnings.filterwarnings("ignore", message=rf"Found {count} module\(s\) in eval mode at the start of training")


def _drop_tips(record: logging.LogRecord) -> bool:
    message = str(record.msg)
    return not (message.startswith(LIGHTNING_TIP) or TF32_ADVICE in message)


@contextmanager
def held_library_lines(names: tuple[str, ...] = ("transformers", "sentence_transformers")) -> Iterator[None]:
    """Hold what the loggers `names` (and their children) log inside the block: logged after it as they would have
    been, or dropped when the block raises, whose error then says what matters."""
    held: list[logging.LogRecord] = []
    holder = logging.Handler()
    holder.emit = held.append
    loggers = [logging.getLogger(name) for name in names]
    saved = [(logger.handlers, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.handlers, logger.propagate = [holder], False
    try:
        yield
    finally:
        for logger, (handlers, propagate) in zip(loggers, saved, strict=True):
            logger.handlers, logger.propagate = handlers, propagate
    for record in held:
        logging.getLogger(record.name).handle(record)
