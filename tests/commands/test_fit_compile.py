"""`model.compile`: the training forward pass is compiled once, for the static shapes the CLI pads batches to.

Inductor takes about 30 s to compile even the tiny BERT on 2 CPU cores, so the CPU tests compile with the `aot_eager`
backend: the same graph capture by dynamo (guards, recompilations, autograd graph), without generated kernels. On a
GPU (`pytest -m gpu`) inductor compiles it, with CUDA graphs.
"""

import csv
import math

import pytest
import torch
from devices import ON_CUDA
from torch._dynamo.utils import counters

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def aot_eager_compile(monkeypatch):
    """`torch.compile` through the `aot_eager` backend; returns the calls to it and the shapes each compiled function
    was called with."""
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
    return calls, shapes


def test_compiled_training_step_captures_one_graph_for_the_whole_run(
    aot_eager_compile, run_cse, shrunk_recipe_args, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    calls, shapes = aot_eager_compile
    args = shrunk_recipe_args("quickstart", "--model.compile", "reduce-overhead", "--data.max_seq_length", "96")

    result = run_cse(args)

    assert result.code == 0, result.err
    assert calls == [{"mode": "reduce-overhead", "dynamic": False, "function": "SentenceEncoder.forward"}]
    # 6 steps of 16 sentences x 2 views, all padded to data.max_seq_length (the longest tiny_data sentence has 73
    # tokens: padded to each batch's longest, the shapes would vary)
    assert shapes == [(2 * 16, 96)] * 6
    assert counters["stats"]["unique_graphs"] == 1  # validations (eager, float32) compiled nothing


@pytest.mark.parametrize("mode", ["reduce-overhead", "max-autotune"])
def test_cuda_graph_modes_with_gradcache_are_one_line(mode, run_cse, shrunk_recipe_args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cse(shrunk_recipe_args("quickstart", "--model.compile", mode, "--model.mini_batch_size", "4"))
    assert code == 2 and not [path for path in tmp_path.rglob("*") if path.is_file()]  # refused before any run
    assert err.strip().splitlines()[-1] == (
        f"error: model.compile: {mode} replays CUDA graphs, which torch cannot run inside GradCache's checkpointed "
        "chunks (model.mini_batch_size: 4); use model.compile true, which compiles without CUDA graphs"
    )


def test_compile_true_with_gradcache_runs_the_compiled_forward_per_chunk(
    aot_eager_compile, run_cse, shrunk_recipe_args, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    calls, shapes = aot_eager_compile
    args = shrunk_recipe_args("quickstart", "--model.compile", "true", "--model.mini_batch_size", "4", max_steps=2)
    args += ["--data.max_seq_length", "96"]

    result = run_cse(args)

    assert result.code == 0, result.err
    assert calls == [{"mode": None, "dynamic": False, "function": "SentenceEncoder.forward"}]
    # 2 steps of 16 sentences x 2 views in chunks of 4 sentences (8 rows): 4 chunks encoded, then each re-encoded by
    # the backward pass
    assert shapes == [(2 * 4, 96)] * (2 * 4 * 2)


@pytest.mark.parametrize(
    "precision", [pytest.param(precision, marks=ON_CUDA) for precision in ("16-mixed", "bf16-mixed")]
)
def test_reduce_overhead_trains_on_cuda_with_one_graph(precision, run_cse, shrunk_recipe_args, tmp_path, monkeypatch):
    """What the GPU check times (`--model.compile reduce-overhead`), with inductor's kernels and CUDA graphs: the
    run trains, validates in eager float32 and compiles one graph for all its steps."""
    monkeypatch.chdir(tmp_path)
    torch._dynamo.reset()
    counters.clear()
    args = shrunk_recipe_args(
        "quickstart", "--model.compile", "reduce-overhead", "--data.max_seq_length", "96", log_every_n_steps=1
    )
    args += ["--trainer.accelerator", "gpu", "--trainer.devices", "1", "--trainer.precision", precision]

    result = run_cse(args)

    assert result.code == 0, result.err
    assert counters["stats"]["unique_graphs"] == 1
    with (tmp_path / "runs" / "quickstart" / "version_0" / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    losses = [float(row["train/loss"]) for row in rows if row.get("train/loss")]
    spearman = [float(row["val/stsb_spearman"]) for row in rows if row.get("val/stsb_spearman")]
    assert len(losses) == 6 and all(math.isfinite(loss) for loss in losses)
    assert len(spearman) == 3 and all(math.isfinite(value) for value in spearman)
