"""`cse sweep` on the tiny model: the table against each run's own metrics.csv and numpy, the best seed exported,
one curve per seed, `--print-jobs` + `--collect` equal to a sequential sweep, an interrupted sweep continuing with
the missing seeds only, and one-line refusals."""

import csv
import shlex
import shutil
import statistics

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from cse.callbacks.non_finite_guard import NonFiniteLossError
from cse.cli import main
from cse.commands import sweep
from cse.runs import validation_curve

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SEEDS = [1, 2, 3]


@pytest.fixture(scope="module")
def fit_args(shrunk_recipe_args, tmp_path_factory) -> list[str]:
    """cse fit arguments (without `fit`) of a 4-step quickstart run, validated every 2 steps, speed logged per step."""
    cache = tmp_path_factory.mktemp("sweep-cache")
    args = shrunk_recipe_args("quickstart", cache_dir=cache, max_steps=4, log_every_n_steps=1, num_sanity_val_steps=0)
    return args[1:]


@pytest.fixture(scope="module")
def sequential(fit_args, tmp_path_factory):
    """A sequential sweep over SEEDS: its folder."""
    sweep_dir = tmp_path_factory.mktemp("sequential") / "sweep"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    main(["sweep", "--seeds", ",".join(map(str, SEEDS)), "--sweep-dir", str(sweep_dir), *fit_args])
    torch.set_num_threads(threads)
    return sweep_dir


def _run_metrics(run_dir) -> list[tuple[int, float]]:
    """(step, Spearman) of a run folder's metrics.csv, read by csv alone (its step is 0-based)."""
    with (run_dir / "metrics.csv").open(newline="") as handle:
        return [
            (int(r["step"]) + 1, float(r["val/stsb_spearman"]))
            for r in csv.DictReader(handle)
            if r.get("val/stsb_spearman")
        ]


def _results(sweep_dir) -> dict[str, dict[str, str]]:
    with (sweep_dir / "results.csv").open(newline="") as handle:
        return {row["seed"]: row for row in csv.DictReader(handle)}


def test_table_rows_are_each_runs_best_and_the_mean_and_sample_std_over_seeds(sequential):
    rows = _results(sequential)
    best = {}
    for seed in SEEDS:
        run_dir = sequential / f"seed_{seed}" / "version_0"
        curve = _run_metrics(run_dir)
        step, spearman = max(curve, key=lambda point: point[1])
        best[seed] = spearman
        assert int(rows[str(seed)]["best_step"]) == step
        assert float(rows[str(seed)]["stsb_dev_spearman_x100"]) == pytest.approx(100 * spearman)
        assert float(rows[str(seed)]["steps_per_sec"]) > 0
    values = 100 * np.array([best[seed] for seed in SEEDS])
    assert float(rows["mean"]["stsb_dev_spearman_x100"]) == pytest.approx(values.mean())
    assert float(rows["std_ddof1"]["stsb_dev_spearman_x100"]) == pytest.approx(np.std(values, ddof=1))
    assert float(rows["std_ddof1"]["stsb_dev_spearman_x100"]) == pytest.approx(statistics.stdev(values.tolist()))
    assert len({round(v, 6) for v in best.values()}) == len(SEEDS), "seeds trained the same run"
    table = (sequential / "results.md").read_text()
    assert (
        f"| mean |  | {values.mean():.2f} |" in table and f"| std (ddof=1) |  | {np.std(values, ddof=1):.2f} |" in table
    )


def test_the_best_seed_is_exported_with_the_table_and_the_plot_in_its_card(sequential):
    scores = {seed: max(s for _, s in _run_metrics(sequential / f"seed_{seed}" / "version_0")) for seed in SEEDS}
    argmax = SEEDS[int(np.argmax([scores[seed] for seed in SEEDS]))]
    exported = load_file(sequential / "best_model" / "model.safetensors")
    own = load_file(sequential / f"seed_{argmax}" / "version_0" / "best_model" / "model.safetensors")
    assert exported.keys() == own.keys() and all(torch.equal(exported[k], own[k]) for k in own)
    card = (sequential / "best_model" / "README.md").read_text()
    assert f"best checkpoint of seed {argmax}, the highest STS-B dev Spearman of 3 seeds" in card
    assert (sequential / "results.md").read_text().strip() in card
    assert "](validation_curves.png)" in card and (sequential / "best_model" / "validation_curves.png").is_file()


def test_collect_draws_one_line_per_seed_and_without_matplotlib_says_how(sequential, monkeypatch, run_cse):
    figures = []
    draw = validation_curve.curve_figure
    monkeypatch.setattr(validation_curve, "curve_figure", lambda *a, **k: figures.append(draw(*a, **k)) or figures[-1])
    code, _, err = run_cse(["sweep", "--collect", str(sequential)])
    assert code == 0, err
    lines = next(f for f in figures if len(f.axes[0].get_lines()) == len(SEEDS)).axes[0].get_lines()
    for seed, line in zip(SEEDS, lines, strict=True):
        expected = _run_metrics(sequential / f"seed_{seed}" / "version_0")
        assert line.get_label() == f"seed {seed}"
        assert list(zip(line.get_xdata(), line.get_ydata(), strict=True)) == [(s, 100 * r) for s, r in expected]

    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    monkeypatch.setitem(__import__("sys").modules, "matplotlib.figure", None)
    (sequential / "validation_curves.png").unlink()
    code, _, err = run_cse(["sweep", "--collect", str(sequential)])
    card = (sequential / "best_model" / "README.md").read_text()
    assert code == 0 and not (sequential / "validation_curves.png").exists()
    assert "pip install 'cse[plot]'" in card and "](validation_curves.png)" not in card


def _table_without_speed(sweep_dir) -> dict:
    return {
        seed: {k: v for k, v in row.items() if k not in ("run", "steps_per_sec")}
        for seed, row in _results(sweep_dir).items()
    }


def test_print_jobs_then_collect_gives_the_sequential_table(sequential, fit_args, tmp_path, run_cse):
    sweep_dir = tmp_path / "jobs"
    code, out, err = run_cse(["sweep", "--print-jobs", "--seeds", "1,2,3", "--sweep-dir", str(sweep_dir), *fit_args])
    assert code == 0, err
    commands = [line for line in out.splitlines() if not line.startswith("#")]
    assert len(commands) == 3 and not list(sweep_dir.glob("seed_*"))  # printed, none run
    for command in commands:
        words = shlex.split(command)
        assert words[:2] == ["cse", "fit"]
        code, _, err = run_cse(words[1:])
        assert code == 0, err
    code, _, err = run_cse(["sweep", "--collect", str(sweep_dir)])
    assert code == 0, err
    assert _table_without_speed(sweep_dir) == _table_without_speed(sequential)


def test_an_interrupted_sweep_continues_with_the_missing_seeds_only(
    sequential, fit_args, tmp_path, monkeypatch, run_cse
):
    sweep_dir = tmp_path / "interrupted"
    trained = []
    real = sweep.run_lightning_cli

    def interrupted_after_one(args):
        if trained:
            raise KeyboardInterrupt
        trained.append(int(args[args.index("--seed_everything") + 1]))
        real(args)

    argv = ["sweep", "--seeds", "1,2,3", "--sweep-dir", str(sweep_dir), *fit_args]
    monkeypatch.setattr(sweep, "run_lightning_cli", interrupted_after_one)
    with pytest.raises(KeyboardInterrupt):
        main(argv)
    first = (sweep_dir / "seed_1" / "version_0" / "checkpoints" / "last.ckpt").stat().st_mtime_ns

    def recording(args):
        trained.append(int(args[args.index("--seed_everything") + 1]))
        real(args)

    monkeypatch.setattr(sweep, "run_lightning_cli", recording)
    code, out, err = run_cse(argv)
    assert code == 0, err
    assert trained == [1, 2, 3] and "seed 1: finished" in out
    assert (sweep_dir / "seed_1" / "version_0" / "checkpoints" / "last.ckpt").stat().st_mtime_ns == first
    assert not (sweep_dir / "seed_1" / "version_1").exists()
    assert _table_without_speed(sweep_dir) == _table_without_speed(sequential)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--seeds", "1,x"], "error: --seeds 1,x: expected comma-separated integers"),
        (["--seeds", "1,1"], "error: --seeds 1,1: expected distinct"),
        (["--seeds", "1", "--seed_everything", "3"], "error: --seed_everything: set by cse sweep for each seed"),
        (["--seeds", "1", "--ckpt_path=last"], "error: --ckpt_path: set by cse sweep"),
        (["--seeds", "1", "--data.dev_file", "null"], "error: data.dev_file: not set"),
        (["--seeds", "1", "--trainer.devices", "2"], "error: trainer.devices: 2 (num_nodes 1) would start DDP"),
        (["--seeds", "1", "--eval-tasks", "stsx"], "error: --tasks stsx: unknown task stsx"),
    ],
)
def test_bad_sweeps_are_one_line_errors_before_training(extra, message, fit_args, tmp_path, run_cse):
    code, out, err = run_cse(["sweep", "--sweep-dir", str(tmp_path / "s"), *fit_args, *extra])
    assert code == 2 and err.startswith(message) and err.count("\n") == 1, err
    assert not list((tmp_path / "s").glob("seed_*"))


def test_a_rerun_with_other_fit_arguments_is_refused(sequential, fit_args, run_cse):
    code, _, err = run_cse(["sweep", "--seeds", "1", "--sweep-dir", str(sequential), *fit_args, "--model.temp", "0.1"])
    assert code == 2 and "its seeds were trained with other cse fit arguments" in err and err.count("\n") == 1


def test_a_failed_seed_is_one_line_and_the_others_are_kept(sequential, fit_args, tmp_path, monkeypatch, run_cse):
    sweep_dir = tmp_path / "failed"
    shutil.copytree(sequential, sweep_dir)
    shutil.rmtree(sweep_dir / "seed_2")

    def diverging(args):
        raise NonFiniteLossError("loss is nan at step 3")

    monkeypatch.setattr(sweep, "run_lightning_cli", diverging)
    code, out, err = run_cse(["sweep", "--seeds", "1,2,3", "--sweep-dir", str(sweep_dir), *fit_args])
    assert code == 2
    assert err.splitlines()[-1] == (
        "error: 1 of 3 seeds failed (seed 2: loss is nan at step 3); rerun the same command to retry them"
    )
    assert "seed 2 failed: loss is nan at step 3" in err and "seed 2: missing, not in the table" in err
    assert set(_results(sweep_dir)) == {"1", "3", "mean", "std_ddof1"}
    assert _results(sweep_dir)["1"] == {**_results(sequential)["1"], "run": str(sweep_dir / "seed_1" / "version_0")}
