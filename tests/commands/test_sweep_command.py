"""`cse sweep` on the tiny model: the table against each run's own metrics.csv and numpy, the best seed exported,
one curve per seed, `--print-jobs` + `--collect` equal to a sequential sweep, an interrupted sweep continuing with
the missing seeds only, and one-line refusals."""

import csv
import json
import math
import shlex
import shutil
import statistics
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from cse.callbacks.non_finite_guard import NonFiniteLossError
from cse.cli import main
from cse.commands import sweep
from cse.config.recipes import resolve_config
from cse.errors import InputError
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
    code, _, err = run_cse(argv)
    assert code == 130 and err.strip().splitlines()[-2:] == [
        "sweep interrupted in seed 2: its last.ckpt and the finished seeds are kept; run this cse sweep command again "
        "to continue (it resumes the seed itself: no --ckpt_path)",
        "interrupted",
    ], err
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
        (["--seeds=4294967296,5"], "error: --seeds 4294967296,5: seed 4294967296 is outside 0..4294967295"),
        (["--seeds=-3"], "error: --seeds -3: seed -3 is outside 0..4294967295"),
        (["--seeds", "-1,2"], "error: --seeds -1,2: seed -1 is outside 0..4294967295"),  # not argparse's option
        (["--seeds=-1,2"], "error: --seeds -1,2: seed -1 is outside 0..4294967295"),
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
    assert not list((tmp_path / "s").glob("seed_*")) and not (tmp_path / "s" / "sweep.json").exists()


def test_a_sweep_dir_that_is_a_file_is_one_line_and_kept(fit_args, tmp_path, run_cse):
    (tmp_path / "notes.txt").write_text("mine\n")
    code, _, err = run_cse(["sweep", "--seeds", "1", "--sweep-dir", str(tmp_path / "notes.txt"), *fit_args])
    assert (
        code == 2
        and err == f"error: --sweep-dir {tmp_path / 'notes.txt'}: is a file; give a folder (made if missing)\n"
    )
    assert (tmp_path / "notes.txt").read_text() == "mine\n"


def test_a_rerun_with_other_fit_arguments_is_refused(sequential, fit_args, run_cse):
    code, _, err = run_cse(["sweep", "--seeds", "1", "--sweep-dir", str(sequential), *fit_args, "--model.temp", "0.1"])
    assert code == 2 and "its seeds were trained with other cse fit arguments" in err and err.count("\n") == 1


def test_settings_cse_fit_refuses_leave_no_record_that_would_refuse_the_corrected_rerun(fit_args, tmp_path, run_cse):
    argv = ["sweep", "--seeds", "1", "--sweep-dir", str(tmp_path / "s")]
    code, _, err = run_cse([*argv, *fit_args, "--model.temp", "0"])
    assert code == 2 and err == "error: model.temp: must be > 0, got 0.0\n"
    assert not (tmp_path / "s").exists()  # no sweep.json, nor the folder made for it
    code, out, err = run_cse([*argv, "--print-jobs", *fit_args])
    assert code == 0 and out.startswith("cse fit "), err


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


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{broken", "not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
        ('{"fit_args": 3}', 'no "fit_args" list of strings'),
        ("[]", 'no "fit_args" list of strings'),
    ],
)
def test_a_damaged_sweep_json_is_one_line_naming_it(content, problem, fit_args, tmp_path, monkeypatch, run_cse):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "sweep.json").write_text(content)
    code, _, err = run_cse(["sweep", "--seeds", "1", "--sweep-dir", "s", *fit_args])
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"error: s/sweep.json: {problem}; it records the sweep's cse fit arguments: restore it, or")
    assert not list((tmp_path / "s").glob("seed_*"))


def test_sweep_json_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    def cut_short(path, text, encoding=None):
        with open(path, "w", encoding=encoding) as handle:
            handle.write(text[:10])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sweep.Path, "write_text", cut_short)
    with pytest.raises(OSError, match="No space left"):
        sweep.record_settings(tmp_path / "s", ["--config", "quickstart"])
    assert list((tmp_path / "s").iterdir()) == []
    monkeypatch.undo()
    sweep.record_settings(tmp_path / "s", ["--config", "quickstart"])
    assert sweep.recorded_fit_args(tmp_path / "s" / "sweep.json") == ["--config", "quickstart"]
    with pytest.raises(InputError, match="other cse fit arguments"):
        sweep.record_settings(tmp_path / "s", ["--config", "quickstart", "--model.temp", "0.1"])


def test_a_rerun_is_compared_by_its_settings_not_their_spelling(tmp_path):
    recorded = ["--config", "quickstart", "--trainer.max_steps", "3", "--model.temp=0.1"]
    sweep.record_settings(tmp_path / "s", recorded)
    for respelled in (
        ["--config=quickstart", "--trainer.max_steps=3", "--model.temp", "0.1"],
        ["--model.temp", "1e-1", "--config", resolve_config("quickstart"), "--trainer.max_steps", "3"],
        [*recorded, "--model.pooler_type", "cls", "--data.batch_size=64"],  # the values the recipe and defaults give
    ):
        sweep.record_settings(tmp_path / "s", respelled)
    assert sweep.recorded_fit_args(tmp_path / "s" / "sweep.json") == recorded
    with pytest.raises(InputError, match=r"; model.temp: 0.1 -> 0.2; trainer.max_steps: 3 -> 4\); give the same"):
        sweep.record_settings(tmp_path / "s", ["--config=quickstart", "--trainer.max_steps=4", "--model.temp=0.2"])
    with pytest.raises(InputError, match=r"data.batch_size: 64 -> 8\)"):
        sweep.record_settings(tmp_path / "s", [*recorded, "--data.batch_size", "8"])


def test_recorded_arguments_that_no_longer_parse_are_one_line_naming_sweep_json(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(Path(resolve_config("quickstart")).read_text())
    sweep.record_settings(tmp_path / "s", ["--config", str(recipe)])
    recipe.unlink()
    with pytest.raises(InputError) as error:
        sweep.record_settings(tmp_path / "s", ["--config", "quickstart"])
    assert str(error.value).startswith(
        f"{tmp_path / 's' / 'sweep.json'}: the sweep's recorded cse fit arguments no longer parse: --config {recipe}: "
        "no such file"
    )


def test_an_error_in_the_arguments_given_again_is_not_blamed_on_sweep_json(tmp_path):
    sweep.record_settings(tmp_path / "s", ["--config", "quickstart"])
    (tmp_path / "tab.yaml").write_text("model:\n\ttemp: 0.1\n")
    with pytest.raises(InputError) as error:
        sweep.record_settings(tmp_path / "s", ["--config", "quickstart", "--config", str(tmp_path / "tab.yaml")])
    assert str(error.value) == (  # as cse fit says it, without "s/sweep.json: ...; restore what it names"
        f"--config {tmp_path / 'tab.yaml'} line 2, column 1: while scanning for the next token found character '\\t' "
        "that cannot start any token"
    )


def _no_training(args):
    raise AssertionError(f"trained: {args}")


def test_a_seed_with_a_truncated_last_ckpt_is_one_line_and_the_others_are_tabulated(
    sequential, fit_args, tmp_path, monkeypatch, run_cse
):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(sequential, tmp_path / "s")
    run_dir = tmp_path / "s" / "seed_2" / "version_0"
    shutil.rmtree(run_dir / "best_model")
    last = run_dir / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    monkeypatch.setattr(sweep, "run_lightning_cli", _no_training)
    code, _, err = run_cse(["sweep", "--seeds", "1,2,3", "--sweep-dir", "s", *fit_args])
    assert code == 2
    reason = (
        "checkpoint s/seed_2/version_0/checkpoints/last.ckpt: truncated (its zip archive has no end: an interrupted "
        "write or copy?); delete s/seed_2 to train this seed from the start"
    )
    assert f"seed 2 failed: {reason}\n" in err
    assert (
        err.splitlines()[-1] == f"error: 1 of 3 seeds failed (seed 2: {reason}); rerun the same command to retry them"
    )
    assert set(_results(tmp_path / "s")) == {"1", "3", "mean", "std_ddof1"}


def test_the_table_covers_the_seeds_asked_for(sequential, fit_args, tmp_path, monkeypatch, run_cse):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(sequential, tmp_path / "s")
    monkeypatch.setattr(sweep, "run_lightning_cli", _no_training)
    code, _, err = run_cse(["sweep", "--seeds", "3,1", "--sweep-dir", "s", *fit_args])
    assert code == 0, err
    assert "s also holds seed_2, not in --seeds: not in the table (cse sweep --collect s tabulates every seed)" in err
    rows, everything = _results(tmp_path / "s"), _results(sequential)
    assert set(rows) == {"1", "3", "mean", "std_ddof1"}
    values = [float(everything[seed]["stsb_dev_spearman_x100"]) for seed in ("1", "3")]
    assert float(rows["mean"]["stsb_dev_spearman_x100"]) == pytest.approx(statistics.fmean(values))
    assert float(rows["std_ddof1"]["stsb_dev_spearman_x100"]) == pytest.approx(statistics.stdev(values))


def test_collect_reports_a_seed_with_only_nan_validations_as_failed(sequential, tmp_path, monkeypatch, run_cse):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(sequential, tmp_path / "s")
    metrics = tmp_path / "s" / "seed_1" / "version_0" / "metrics.csv"
    with metrics.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    with metrics.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**row, "val/stsb_spearman": "nan"} if row["val/stsb_spearman"] else row for row in rows)
    code, _, err = run_cse(["sweep", "--collect", "s"])
    reason = (
        "metrics file s/seed_1/version_0/metrics.csv: every val/stsb_spearman is nan (the model's similarities were "
        "constant or not finite): no best to report; mend it, or delete s/seed_1 to train this seed again"
    )
    assert code == 2
    assert err.splitlines()[-1] == f"error: 1 of 3 seeds failed (seed 1: {reason}); the table holds the others"
    rows = _results(tmp_path / "s")
    assert set(rows) == {"2", "3", "mean", "std_ddof1"} and not math.isnan(
        float(rows["mean"]["stsb_dev_spearman_x100"])
    )
    assert json.loads((tmp_path / "s" / "sweep.json").read_text())["fit_args"]
