"""Refuse, in one line, a `model.compile` mode that torch cannot run with the rest of the model's settings.

`reduce-overhead` and `max-autotune` replay the compiled forward pass as CUDA graphs (torch's CUDA graph trees).
GradCache (`model.mini_batch_size`) runs that forward inside non-reentrant activation checkpointing, once per chunk,
and again in the backward pass: CUDA graph trees fail there (pytorch/pytorch#154306, open: "graph recording observed
an input tensor deallocate during graph recording that did not occur during replay"; SimpleTuner, meeting it with
torch 2.11, compiles checkpointed models without CUDA graphs). Refused before anything is built, rather than after
minutes of compiling on the GPU; `model.compile: true` (mode "default") compiles the same forward without CUDA graphs.
A batch large enough to need GradCache keeps the GPU busy, so CUDA graphs would save little there anyway.
"""

from cse.errors import InputError

CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")  # torch.compile modes that use CUDA graphs


def check_compile_settings(compile_mode: bool | str, mini_batch_size: int | None) -> None:
    """Raise `InputError` for a CUDA-graph compile mode together with GradCache's chunks."""
    if compile_mode in CUDA_GRAPH_MODES and mini_batch_size is not None:
        raise InputError(
            f"model.compile: {compile_mode} replays CUDA graphs, which torch cannot run inside GradCache's "
            f"checkpointed chunks (model.mini_batch_size: {mini_batch_size}); use model.compile true, which compiles "
            "without CUDA graphs"
        )
