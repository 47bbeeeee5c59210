"""scripts/worker_batches.py on the tiny model's tokenizer: both layouts timed, the saving is their difference."""

import re
import statistics


def test_both_layouts_are_timed_and_compared(script_module, tiny_model_dir, capsys):
    worker_batches = script_module("worker_batches")
    worker_batches.main(
        ["--model", str(tiny_model_dir), "--batch-size", "4", "--max-seq-length", "8", "--num-workers", "1"]
        + ["--batches", "5", "--rounds", "2", "--step-ms", "1"]
    )
    output = capsys.readouterr().out
    assert "3 tensors per batch, 1 workers, no pinned memory (no CUDA)" in output
    rows = {
        match[1]: (float(match[2]), [float(value) for value in match[3].split()])
        for match in re.finditer(r"^(per tensor|per dtype)\s+([\d.]+)\s+([\d. ]+)$", output, re.M)
    }
    assert list(rows) == ["per tensor", "per dtype"]
    for median, rounds in rows.values():
        assert len(rounds) == 2 and all(value > 0 for value in rounds)
        assert abs(median - statistics.median(rounds)) < 1e-3
    saved = float(re.search(r"^saved per batch by one storage per dtype: (-?[\d.]+) ms$", output, re.M)[1])
    assert abs(saved - (rows["per tensor"][0] - rows["per dtype"][0])) <= 0.002  # each printed to 0.001
