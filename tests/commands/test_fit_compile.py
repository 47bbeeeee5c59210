"""`model.compile`: the training forward pass is compiled once, for the static shapes the CLI pads batches to.

Inductor takes about 30 s to compile even the tiny BERT on 2 CPU cores, so the test compiles with the `aot_eager`
backend: the same graph capture by dynamo (guards, recompilations, autograd graph), without generated kernels.
"""

import pytest
import torch
from torch._dynamo.utils import counters

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_compiled_training_step_captures_one_graph_for_the_whole_run(
    run_cse, shrunk_recipe_args, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    calls, shapes = [], []
    compile_ = torch.compile

    def aot_eager(function, mode=None, dynamic=None):
        calls.append({"mode": mode, "dynamic": dynamic, "function": function.__qualname__})
        compiled = compile_(function, backend="aot_eager", dynamic=dynamic)

        def recorded(**inputs):
            shapes.append(tuple(inputs["input_ids"].shape))
            return compiled(**inputs)

        return recorded

    monkeypatch.setattr(torch, "compile", aot_eager)
    torch._dynamo.reset()
    counters.clear()
    args = shrunk_recipe_args("quickstart", "--model.compile", "reduce-overhead", "--data.max_seq_length", "96")

    result = run_cse(args)

    assert result.code == 0, result.err
    assert calls == [{"mode": "reduce-overhead", "dynamic": False, "function": "SentenceEncoder.forward"}]
    # 6 steps of 16 sentences x 2 views, all padded to data.max_seq_length (the longest tiny_data sentence has 73
    # tokens: padded to each batch's longest, the shapes would vary)
    assert shapes == [(2 * 16, 96)] * 6
    assert counters["stats"]["unique_graphs"] == 1  # validations (eager, float32) compiled nothing
