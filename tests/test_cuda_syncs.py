"""The CPU check of what would wait for a CUDA GPU (`cuda_syncs`), on operations whose behaviour on CUDA is known."""

import torch
from cuda_syncs import WaitingOperations


def test_counts_each_operation_that_waits_for_the_device_and_none_that_queues():
    values = torch.randn(4, 3)
    with WaitingOperations() as watched:
        watched.watch(0)  # queued on CUDA: kernels whose output size the host knows
        (values @ values.T + 1).softmax(dim=1)
        torch.full((), 2.5) * torch.arange(4)
        torch.where(values > 0, values, 0.0).sum(dim=0)
        watched.watch(1)  # each waits on CUDA
        values.sum().item()
        bool(values.max() > 0)
        torch.tensor([1.0, 2.0])
        values[values > 0]
        values.nonzero()
        values.round().unique()
        watched.watch(None)
        values.sum().item()  # not watched

    assert watched.steps == [0, 1]
    reasons = {where.split(" (")[0] for where in watched.waits[1]}
    assert 0 not in watched.waits
    assert reasons == {
        "read as a Python value",
        "made from Python values",
        "indexed by a boolean mask",
        "sized by the device",
    }, watched.waits[1]
    assert sum(watched.waits[1].values()) == 6
    assert {where.split(" in ")[1].rsplit(":", 1)[0] for where in watched.waits[1]} == {__file__}  # the caller
    assert watched.own_code_waits() == {0: [], 1: []}  # this file is neither cse's nor Lightning's code
