"""GradCache (Gao et al., 2021, "Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup").

A contrastive loss needs every embedding of the batch at once, but not every activation: GradCache encodes the
batch in chunks without keeping activations, computes the loss and its gradient with respect to the embeddings
(the cached "representation gradient"), then re-encodes each chunk with the same dropout masks and back-propagates
that gradient into the encoder. Loss and gradients are those of the full batch; activation memory is one chunk's.

Here the chunks run under non-reentrant activation checkpointing (`torch.utils.checkpoint`), which performs these
same steps inside one ordinary backward pass: the forward keeps only each chunk's inputs and output, autograd
computes the embeddings' gradient through the loss (and through a cross-device gather), and reaching a chunk
re-runs its forward with the saved CPU and CUDA RNG states (identical dropout masks) and autocast state. The chunk's
tensors are passed to `checkpoint` positionally: it looks for the devices whose RNG state it must save in its
positional arguments only, so tensors passed by keyword would leave the CUDA RNG unsaved and the re-encoded chunk
would get new dropout masks on a GPU (a CPU run would not show it: the CPU RNG is always saved). Chunks are
re-encoded one at a time, last first, so a chunk's activations are freed before the next is rebuilt. Because it is
one backward pass, Lightning's automatic optimization (gradient scaler, clipping, accumulation, DDP's single
gradient all-reduce) works unchanged. The cost is one extra forward pass per step.

On Apple's MPS, torch's checkpoint saves no device RNG state (it looks for `torch.mps._initialized`, which does not
exist; pytorch/pytorch#127676): the re-encoded chunk would draw new dropout masks and its gradient would not be the
forward's. `MpsRngReplay` re-runs a chunk on MPS with the generator as it was at the chunk's forward, and puts the
generator back after, as torch's checkpoint does for CUDA.
"""

from collections.abc import Callable

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint


def chunked_checkpoint(
    function: Callable[..., Tensor], inputs: dict[str, Tensor], chunk_rows: int | None
) -> list[Tensor]:
    """`function(**chunk)` for consecutive chunks of `chunk_rows` rows of every input, activations recomputed.

    Args:
        function: maps (b, ...) tensors given by keyword to one tensor, e.g. the encoder, (b, L) -> (b, H).
        inputs: tensors with the same number of rows R.
        chunk_rows: rows per chunk; None runs `function` once on all rows, with its activations kept.

    Returns:
        One output per chunk, in row order (a single one for None).
    """
    if chunk_rows is None:
        return [function(**inputs)]
    names = list(inputs)

    def by_keyword(*chunk: Tensor) -> Tensor:
        return function(**dict(zip(names, chunk, strict=True)))

    chunks = zip(*(tensor.split(chunk_rows) for tensor in inputs.values()), strict=True)  # R rows -> ⌈R / c⌉ chunks
    return [
        checkpoint(
            MpsRngReplay(by_keyword) if _on_mps(chunk) else by_keyword,
            *chunk,
            use_reentrant=False,
            preserve_rng_state=True,
        )
        for chunk in chunks
    ]


class MpsRngReplay:
    """`function`, whose first call (the forward) draws from MPS's generator as it goes, and whose later calls (the
    re-encoding) draw from the generator as it was at the first, leaving it as they found it."""

    def __init__(self, function: Callable[..., Tensor]) -> None:
        self.function = function
        self.forward_state: Tensor | None = None

    def __call__(self, *chunk: Tensor) -> Tensor:
        if self.forward_state is None:
            self.forward_state = torch.mps.get_rng_state()
            return self.function(*chunk)
        current = torch.mps.get_rng_state()
        torch.mps.set_rng_state(self.forward_state)
        try:
            return self.function(*chunk)
        finally:
            torch.mps.set_rng_state(current)


def _on_mps(chunk: tuple[Tensor, ...]) -> bool:
    """Whether the chunk is on Apple's MPS, whose generator torch's checkpoint does not save."""
    return any(tensor.device.type == "mps" for tensor in chunk)


def checkpointed_rows(function: Callable[..., Tensor], inputs: dict[str, Tensor], chunk_rows: int | None) -> Tensor:
    """`chunked_checkpoint`'s outputs as one (R, ...) tensor in row order: a single output as it is (no copy), several
    concatenated."""
    chunks = chunked_checkpoint(function, inputs, chunk_rows)
    return chunks[0] if len(chunks) == 1 else torch.cat(chunks)
