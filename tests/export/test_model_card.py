import dataclasses
import json
import shutil

import pytest
import yaml
from lightning.pytorch import Trainer

from cse.cli import main
from cse.errors import InputError
from cse.export.model_card import read_eval_scores, render_model_card
from cse.inference.loading import load_encoder
from cse.models.simcse import SimCSE
from cse.runs.finished_run import read_training_run


@pytest.fixture(scope="module")
def bare_checkpoint(tiny_model_dir, tmp_path_factory):
    """A checkpoint alone in its directory: no config.yaml, no metrics.csv beside it."""
    path = tmp_path_factory.mktemp("bare") / "model.ckpt"
    module = SimCSE(str(tiny_model_dir), pooler_type="avg", temp=0.07)
    trainer = Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(path)
    return path


def _card(checkpoint, eval_scores: dict[str, float] | None = None, **changes) -> str:
    run = dataclasses.replace(read_training_run(checkpoint), **changes)
    encoder, _ = load_encoder(checkpoint)
    return render_model_card(run, encoder, "my-model", eval_scores)


def test_card_of_a_checkpoint_without_its_run_directory(bare_checkpoint):
    card = _card(bare_checkpoint)
    assert card.startswith("---\nlibrary_name: sentence-transformers\n")
    assert "base_model:" not in card  # a local path is not a hub id
    assert "| `model.temp` | `0.07` |" in card and "| `model.pooler_type` | `avg` |" in card
    assert "not found: no config.yaml beside the checkpoint" in card
    assert "No STS dev evaluations were logged" in card
    assert "| STS dev of this checkpoint (×100) | not evaluated |" in card
    assert "the mean of the last layer's token states over real (non-padding) tokens" in card


def test_card_names_a_hub_base_model_and_the_objective_of_the_data(bare_checkpoint):
    hparams = {**read_training_run(bare_checkpoint).hyperparameters, "model_name_or_path": "bert-base-uncased"}
    card = _card(bare_checkpoint, hyperparameters={**hparams, "hard_negative_weight": 0.5}, data_mode="triplets")
    assert "\nbase_model: bert-base-uncased\n" in card
    assert "sent0's hard negative" in card and "hard_negative_weight = 0.5" in card
    card = _card(bare_checkpoint, hyperparameters={**hparams, "do_mlm": True, "mlm_weight": 0.1}, data_mode="pairs")
    assert "masked-language-modelling loss" in card and "mlm_weight = 0.1" in card


def test_card_of_a_tsdae_run_names_tsdae_not_infonce(bare_checkpoint):
    hparams = read_training_run(bare_checkpoint).hyperparameters
    tsdae = {**hparams, "objective": "tsdae", "tsdae_deletion_ratio": 0.6, "pooler_type": "cls_before_pooler"}
    card = _card(bare_checkpoint, hyperparameters=tsdae, data_mode="unsupervised")
    loss = next(line for line in card.splitlines() if line.startswith("| Loss |"))
    assert "with TSDAE's denoising auto-encoder objective (Wang et al., 2021)," in card
    assert "contrastive objective" not in card
    assert loss.startswith("| Loss | TSDAE: cross-entropy of a decoder") and loss.endswith(
        "tsdae_deletion_ratio = 0.6 |"
    )
    assert "InfoNCE" not in card and "dropout views" not in card


def test_card_of_a_promptbert_run_names_its_templates(bare_checkpoint):
    hparams = read_training_run(bare_checkpoint).hyperparameters
    prompt = {
        **hparams,
        "pooler_type": "prompt",
        "prompt_template": 'A "[X]" means [MASK] .',
        "template_denoising": True,
    }
    loss = next(
        line
        for line in _card(bare_checkpoint, hyperparameters=prompt, data_mode="unsupervised").splitlines()
        if line.startswith("| Loss |")
    )
    assert "each text embedded inside a template (PromptBERT, Jiang et al., 2022)" in loss
    assert 'prompt_template = A "[X]" means [MASK] .' in loss and "template_denoising = true" in loss


def test_card_of_a_mixture_names_its_files_and_counts_their_examples(bare_checkpoint, tmp_path):
    first, second = tmp_path / "nli.csv", tmp_path / "qa.jsonl"
    first.write_text("premise,hypothesis\n" + "".join(f"premise {i},hypothesis {i}\n" for i in range(7)))
    second.write_text("".join(f'{{"q": "question {i}", "a": "answer {i}"}}\n' for i in range(5)))
    files = [str(first), {"file": str(second), "columns": {"sent0": "q", "sent1": "a"}}]
    data = {"train_file": None, "train_files": files, "mixture": "round_robin", "cache_dir": str(tmp_path / "cache")}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"data": data}))
    shutil.copy(bare_checkpoint, tmp_path / "model.ckpt")
    run = read_training_run(tmp_path / "model.ckpt")
    assert (run.train_examples, run.data_mode) == (7 + 5, "pairs")
    encoder, _ = load_encoder(bare_checkpoint)
    card = render_model_card(run, encoder, "my-model")
    assert (
        "| Training data | a mixture (round_robin) of `nli.csv`, `qa.jsonl`, 12 (sent0, sent1) positive pairs |" in card
    )
    assert "each (sent0, sent1) pair as positives (SimCSE §4)" in card


def test_eval_scores_are_printed_times_100_unless_they_already_are(bare_checkpoint, tmp_path):
    path = tmp_path / "eval.json"
    path.write_text(json.dumps({"model": "x", "scores": {"STS12": 0.6812, "Avg.": 0.7}}))
    scores = read_eval_scores(path)
    assert list(scores) == ["STS12", "Avg."]
    card = _card(bare_checkpoint, eval_scores=scores)
    assert "| STS12 | 68.12 |" in card and "| Avg. | 70.00 |" in card
    card = _card(bare_checkpoint, eval_scores={"STS12": 68.12, "Avg.": 70.0})
    assert "| STS12 | 68.12 |" in card and "| Avg. | 70.00 |" in card


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "eval.json: no such file"),
        ("{not json", "eval.json: not a readable JSON file"),
        ('{"STS12": 0.5}', "expected a non-empty object under key 'scores'"),
        ('{"scores": {"STS12": "high"}}', "scores.STS12 is 'high', not a number"),
    ],
)
def test_bad_eval_json_is_a_one_line_error(content, message, tmp_path):
    path = tmp_path / "eval.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=message) as error:
        read_eval_scores(path)
    assert "\n" not in str(error.value)


def test_cse_export_of_a_bare_checkpoint_refuses_to_overwrite(bare_checkpoint, tmp_path, capsys):
    main(["export", str(bare_checkpoint), str(tmp_path / "out")])
    assert (tmp_path / "out" / "README.md").is_file() and (tmp_path / "out" / "modules.json").is_file()
    before = {path.name: path.stat().st_mtime_ns for path in (tmp_path / "out").iterdir()}
    with pytest.raises(SystemExit) as exit_:
        main(["export", str(bare_checkpoint), str(tmp_path / "out")])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().endswith("out: already exists; pass --overwrite to replace it")
    assert {path.name: path.stat().st_mtime_ns for path in (tmp_path / "out").iterdir()} == before
    main(["export", str(bare_checkpoint), str(tmp_path / "out"), "--overwrite"])
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]


def test_a_metrics_file_cut_short_is_said_in_the_card(bare_checkpoint):
    card = _card(bare_checkpoint, incomplete_metrics_line=7)
    assert "(Line 7 of metrics.csv, its last, is incomplete: the run stopped while writing it. It is left out.)" in card
    assert "| STS dev of this checkpoint (×100) | not in metrics.csv, whose last line is incomplete" in card
    assert "incomplete" not in _card(bare_checkpoint)


def test_cse_export_of_a_run_with_a_damaged_metrics_file_is_one_line(bare_checkpoint, tmp_path, monkeypatch, run_cse):
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "version_0"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(bare_checkpoint.read_bytes())
    (run_dir / "metrics.csv").write_bytes(b"epoch,step,val/stsb_spearman\n0,1,0.25\n\xff\xfe\x80garbage\n")
    code, _, err = run_cse(["export", str(run_dir), str(tmp_path / "out")])
    assert (
        code == 2
        and err == f"error: metrics file {run_dir / 'metrics.csv'} line 3: not UTF-8 text (byte 0xff: a damaged file)\n"
    )
    assert not (tmp_path / "out").exists()
