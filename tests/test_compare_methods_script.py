"""scripts/compare_methods.py on the tiny model, 2 options x 2 seeds x 3 steps: its table against the sweeps' own
per-seed figures (numpy mean and sample std), and the step-time ratios (by mean, by fastest seed) against the runs'
logged steps/s."""

import csv
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def compare(monkeypatch, script_module):
    module = script_module("compare_methods")
    # The tiny model's hidden size is 32: the Matryoshka line scaled to it.
    overrides = list(module.METHODS["matryoshka"])
    overrides[overrides.index("--model.matryoshka_dims") + 1] = "[32,16]"
    monkeypatch.setitem(module.METHODS, "matryoshka", overrides)
    return module


@pytest.fixture
def senteval_dir(tiny_data, tmp_path) -> Path:
    """STS-B dev and SICK-R trial in SentEval's layout, both from the generated dev pairs."""
    directory = tmp_path / "senteval"
    (directory / "STS" / "STSBenchmark").mkdir(parents=True)
    shutil.copy(tiny_data.dev_file, directory / "STS" / "STSBenchmark" / "sts-dev.csv")
    (directory / "SICK").mkdir()
    with open(tiny_data.dev_file, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    lines = ["pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment"]
    lines += [
        f"{i}\t{r['sentence2']}\t{r['sentence1']}\t{1 + 0.8 * float(r['score'])}\tNEUTRAL" for i, r in enumerate(rows)
    ]
    (directory / "SICK" / "SICK_trial.txt").write_text("\n".join(lines) + "\n")
    return directory


def _seed_figures(sweep_dir: Path) -> dict[str, list[float]]:
    """Per seed, from each run's own files: its cse eval scores and its mean logged steps/s."""
    figures = {"STSBenchmark": [], "SICKRelatedness": [], "steps": []}
    for run_dir in sorted(sweep_dir.glob("seed_*/version_0")):
        scores = json.loads((run_dir / "sweep_eval.json").read_text())["scores"]
        figures["STSBenchmark"].append(scores["STSBenchmark"])
        figures["SICKRelatedness"].append(scores["SICKRelatedness"])
    with (sweep_dir / "results.csv").open(newline="") as handle:
        figures["steps"] = [float(r["steps_per_sec"]) for r in csv.DictReader(handle) if r["seed"].isdigit()]
    return figures


def test_table_gives_mean_and_sample_std_over_seeds_and_the_step_time_ratio(
    compare, tiny_model_dir, tiny_data, senteval_dir, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    argv = ["--methods", "simcse,matryoshka", "--seeds", "1,2", "--max-steps", "3", "--val-check-interval", "1"]
    argv += ["--model", str(tiny_model_dir)]
    argv += ["--train-file", str(tiny_data.train_file), "--dev-file", str(tiny_data.dev_file)]
    argv += ["--data-dir", str(senteval_dir), "--out-dir", str(tmp_path / "compare")]
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()  # without the filters an earlier `cse` command in this process added
        warnings.simplefilter("always")
        table = compare.main(argv)
    assert not [str(warning.message) for warning in caught if "LeafSpec" in str(warning.message)]  # as under `cse`
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in table.splitlines() if line.startswith("| ")}
    figures = {method: _seed_figures(tmp_path / "compare" / method) for method in ("simcse", "matryoshka")}
    for method, cells in rows.items():
        if method == "method":
            continue
        values = figures[method]
        assert cells[1] == "2"
        for cell, task in zip(cells[2:4], ("STSBenchmark", "SICKRelatedness"), strict=True):
            assert cell == f"{np.mean(values[task]):.2f} ± {np.std(values[task], ddof=1):.2f}"
        ratio = np.mean(figures["simcse"]["steps"]) / np.mean(values["steps"])
        fastest = max(figures["simcse"]["steps"]) / max(values["steps"])
        assert cells[4].strip(" |") == f"{ratio:.2f}× / {fastest:.2f}×"
    assert set(rows) == {"method", "simcse", "matryoshka"}


def test_negative_seeds_reach_cse_sweeps_refusal(compare, tmp_path, monkeypatch, capsys):
    """argparse took -1,2 for an option: 'argument --seeds: expected one argument'."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        compare.main(["--seeds", "-1,2", "--methods", "simcse", "--model", "m"])
    assert exit_.value.code == 2
    assert (
        capsys.readouterr().err.splitlines()[-1]
        == "error: --seeds -1,2: seed -1 is outside 0..4294967295, the seeds numpy accepts"
    )
