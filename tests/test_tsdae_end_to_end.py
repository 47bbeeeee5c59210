"""TSDAE end to end: `cse fit` of the shipped recipe shrunk to the tiny model trains, exports the encoder alone (its
[CLS] embedding in transformers, sentence-transformers and `cse.load_model`), resumes exactly from last.ckpt, and
refuses data that is not single sentences in one line."""

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from safetensors.torch import load_file
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, AutoTokenizer

from cse.cli import main
from cse.inference.api import load_model
from cse.runs.checkpoint_model import load_checkpoint_encoder

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RECIPE = "unsup-tsdae-bert-base"
SENTENCES = ["a man is playing a guitar.", "the dog is in the park", "a girl", "a boy is on the dog", "the woman"]


class Crash(Callback):
    """Raises after training step `step` (a lost node, out of memory)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: pl.Trainer, *args) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError(f"simulated crash after step {self.step}")


def _args(shrunk_recipe_args, directory: Path, *overrides: str, **trainer) -> list[str]:
    return shrunk_recipe_args(
        RECIPE,
        "--model.learning_rate",
        "1.0e-3",
        "--data.max_seq_length",
        "32",
        "--trainer.logger.init_args.save_dir",
        str(directory / "runs"),
        *overrides,
        batch_size=8,
        cache_dir=directory.parent / "cache",
        num_sanity_val_steps=0,
        **trainer,
    )


def _checkpoints(directory: Path) -> Path:
    return directory / "runs" / RECIPE / "version_0" / "checkpoints"


@pytest.fixture(scope="module")
def run_dir(shrunk_recipe_args, tmp_path_factory) -> Path:
    """The recipe on the tiny model: 4 steps of 8 sentences, validated at steps 2 and 4, the best one exported."""
    directory = tmp_path_factory.mktemp("tsdae") / "run"
    main(_args(shrunk_recipe_args, directory, max_steps=4))
    return directory / "runs" / RECIPE / "version_0"


def test_export_is_the_encoder_and_every_loader_gives_its_cls_embedding(run_dir):
    model_dir = run_dir / "best_model"
    checkpoint = next((run_dir / "checkpoints").glob("best-step=*.ckpt"))
    state = torch.load(checkpoint, weights_only=True)["state_dict"]
    assert any(".crossattention." in name for name in state), "the checkpoint holds the decoder (to resume)"
    exported = load_file(model_dir / "model.safetensors")
    assert not any("crossattention" in name or name.startswith("cls.") for name in exported), "the encoder only"
    encoder, tokenizer = load_checkpoint_encoder(checkpoint)
    tokens = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = encoder(**tokens)  # (N, H): the trained encoder's [CLS] vector
        hf = AutoModel.from_pretrained(model_dir).eval()
        hf_tokens = AutoTokenizer.from_pretrained(model_dir)(SENTENCES, padding=True, return_tensors="pt")
        transformers_cls = hf(**hf_tokens).last_hidden_state[:, 0]
    torch.testing.assert_close(transformers_cls, expected, atol=1e-5, rtol=0)
    st = SentenceTransformer(str(model_dir), device="cpu").encode(SENTENCES, convert_to_tensor=True)
    torch.testing.assert_close(st, expected, atol=1e-5, rtol=0)
    ours = load_model(model_dir, device="cpu").encode(SENTENCES, convert_to="torch")
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)


def test_a_crashed_run_resumes_to_the_uninterrupted_weights(shrunk_recipe_args, tmp_path):
    """A crash after step 6 resumes from the periodic last.ckpt of step 4: the deletion draws, dropout, the order and
    the decoder's own weights (cross-attention) continue, so the final weights equal an unbroken run's, bitwise."""
    options = [
        "--checkpoint.save_last",
        "false",
        "--periodic_checkpoint.every_n_train_steps",
        "4",
        "--ckpt_path",
        "last",
    ]
    reference = tmp_path / "uninterrupted"
    main(_args(shrunk_recipe_args, reference, *options, max_steps=8, val_check_interval=4))
    run = tmp_path / "crashed"
    args = _args(shrunk_recipe_args, run, *options, max_steps=8, val_check_interval=4)
    with pytest.raises(RuntimeError):
        main([*args, "--trainer.callbacks+=test_tsdae_end_to_end.Crash", "--trainer.callbacks.step=6"])
    last = _checkpoints(run) / "last.ckpt"
    crashed = torch.load(last, weights_only=True)
    assert crashed["global_step"] == 4
    main(args)
    weights = torch.load(last, weights_only=True)["state_dict"]
    expected = torch.load(_checkpoints(reference) / "last.ckpt", weights_only=True)["state_dict"]
    assert weights.keys() == expected.keys() and any("crossattention" in name for name in weights)
    assert all(torch.equal(weights[name], value) for name, value in expected.items())
    step_4 = crashed["state_dict"]  # not the best checkpoint: which validation scores best depends on CPU rounding
    assert not all(torch.equal(step_4[name], value) for name, value in expected.items()), "steps 5-8 trained"


def test_tsdae_on_pairs_is_one_line(shrunk_recipe_args, tmp_path, run_cse):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("sent0\tsent1\n" + "a man\tthe man\n" * 20)
    code, _, err = run_cse(_args(shrunk_recipe_args, tmp_path, "--data.train_file", str(pairs), max_steps=2))
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and "Traceback" not in err, err
    assert errors == [
        f"error: model.objective: tsdae trains on single sentences, but {pairs} holds pairs examples; give a "
        "one-column corpus (e.g. a .txt file, one sentence per line)"
    ]
