"""A GPU out of memory as one line: what torch tried to allocate and what was free, and the setting that makes the
failing step smaller.

torch's own message is a paragraph (the allocator's figures, then advice on fragmentation) under a traceback that
goes through Lightning's loops; the setting to change is cse's, and depends on where memory ran out: in Lightning's
training (`cse fit`, and the fits of `cse sweep` and `cse quickstart`) a training step (its batch, its length, or
GradCache's chunks) or a validation step (dev pairs per batch); outside it, an inference command's forward passes.
"""

import traceback
from pathlib import Path

import torch

EVALUATION_STEPS = ("validation_step", "test_step")  # LightningModule hooks: dev or test pairs, not training batches

TRAINING_ADVICE = (
    "lower data.batch_size, or set model.mini_batch_size to encode each batch in chunks of that many examples "
    "(GradCache: the same loss and gradients, one more forward pass), or lower data.max_seq_length"
)
EVALUATION_ADVICE = "lower data.eval_batch_size (sentence pairs per validation batch)"
INFERENCE_ADVICE = "lower --batch-size (sentences per forward pass)"


def out_of_memory_line(command: str, error: torch.OutOfMemoryError) -> str:
    """`out of GPU memory in cse fit (CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of
    15.56 GiB of which 1.19 GiB is free): lower data.batch_size, ...` for `error` raised by `cse COMMAND`."""
    frames = traceback.extract_tb(error.__traceback__)
    if any(frame.name in EVALUATION_STEPS for frame in frames):
        advice = EVALUATION_ADVICE
    elif any("lightning" in Path(frame.filename).parts for frame in frames):  # a Trainer ran it
        advice = TRAINING_ADVICE
    else:
        advice = INFERENCE_ADVICE
    return f"out of GPU memory in cse {command} ({_allocation(error)}): {advice}"


def _allocation(error: torch.OutOfMemoryError) -> str:
    """torch's figures up to the free memory ("... of which 1.19 GiB is free"), or its first sentence."""
    text = " ".join(str(error).split()) or type(error).__name__
    free = text.find(" is free")
    return text[: free + len(" is free")] if free >= 0 else text.split(". ")[0].removesuffix(".")
