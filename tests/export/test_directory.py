import json
import os
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from cse.errors import InputError
from cse.export.directory import write_model_directory
from cse.export.pooling import CSE_CONFIG_NAME
from cse.export.target import FILE_LIST_NAME
from cse.models.encoder import SentenceEncoder
from cse.models.poolers import POOLER_TYPES, masked_mean

SENTENCES = ["a man is playing a guitar.", "the dog is in the park", "a girl"]


def _embed_with_transformers(model_dir, pooler_type: str) -> torch.Tensor:
    """How a user gets the embedding from the exported directory with plain transformers."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model, info = AutoModel.from_pretrained(model_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model.eval()(**batch, output_hidden_states=True)
    mask, layers = batch["attention_mask"], out.hidden_states
    return {
        "pooler_output": out.pooler_output,
        "cls_before_pooler": out.last_hidden_state[:, 0],
        "avg": masked_mean(out.last_hidden_state, mask),
        "avg_top2": masked_mean((layers[-1] + layers[-2]) / 2, mask),
        "avg_first_last": masked_mean((layers[1] + layers[-1]) / 2, mask),
    }[pooler_type]


@pytest.mark.parametrize(("pooler_type", "mlp_only_train"), [(p, False) for p in POOLER_TYPES] + [("cls", True)])
def test_exported_directory_gives_the_same_embeddings(tiny_model_dir, tmp_path, pooler_type, mlp_only_train):
    torch.manual_seed(0)
    encoder = SentenceEncoder.from_pretrained(str(tiny_model_dir), pooler_type, mlp_only_train)
    with torch.no_grad():  # make the MLP and every layer differ from the saved base model
        for param in encoder.parameters():
            param.add_(0.01 * torch.randn_like(param))
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    out_dir = write_model_directory(encoder, tokenizer, tmp_path / "exported")
    config = json.loads((out_dir / CSE_CONFIG_NAME).read_text())
    assert config["pooler_type"] == pooler_type and config["mlp_only_train"] == mlp_only_train
    assert config["matryoshka_dims"] is None  # trained without Matryoshka (tests/test_matryoshka.py: with)
    assert (out_dir / "model.safetensors").is_file() and (out_dir / "tokenizer.json").is_file()
    with torch.no_grad():
        expected = encoder.eval()(**tokenizer(SENTENCES, padding=True, return_tensors="pt"))
    actual = _embed_with_transformers(
        out_dir, config["embedding"] if config["embedding"] != "cls" else "cls_before_pooler"
    )
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)


def _previous_export(encoder, tokenizer, out_dir: Path) -> None:
    """A previous export at `out_dir`, recognisable by its model card."""
    write_model_directory(encoder, tokenizer, out_dir, model_card="previous export\n")
    assert (out_dir / FILE_LIST_NAME).is_file()


def test_export_replaces_previous_directory_atomically(tiny_encoder, tiny_model_dir, tmp_path, monkeypatch):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    out_dir = tmp_path / "exported"
    _previous_export(tiny_encoder, tokenizer, out_dir)
    previous = sorted(path.name for path in out_dir.iterdir())

    def failing_save(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tokenizer, "save_pretrained", failing_save)
    with pytest.raises(InputError, match=r"write failed \(No space left on device\); nothing was replaced"):
        write_model_directory(tiny_encoder, tokenizer, out_dir)
    assert [path.name for path in tmp_path.iterdir()] == ["exported"], "a staging directory was left behind"
    assert sorted(path.name for path in out_dir.iterdir()) == previous
    assert (out_dir / "README.md").read_text() == "previous export\n"

    monkeypatch.undo()
    write_model_directory(tiny_encoder, tokenizer, out_dir)
    assert not (out_dir / "README.md").exists() and (out_dir / "config.json").is_file()
    assert [path.name for path in tmp_path.iterdir()] == ["exported"]


def test_existing_directory_is_kept_without_overwrite(tiny_encoder, tiny_model_dir, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    out_dir = tmp_path / "exported"
    _previous_export(tiny_encoder, tokenizer, out_dir)
    with pytest.raises(InputError, match=r"exported: already exists; pass --overwrite to replace it"):
        write_model_directory(tiny_encoder, tokenizer, out_dir, overwrite=False)
    assert (out_dir / "README.md").read_text() == "previous export\n"
    assert [path.name for path in tmp_path.iterdir()] == ["exported"]
    (tmp_path / "a-file").write_text("")
    with pytest.raises(InputError, match="a-file: is a file"):
        write_model_directory(tiny_encoder, tokenizer, tmp_path / "a-file")


@pytest.mark.parametrize("overwrite", [True, False])
def test_a_directory_that_is_not_an_export_is_never_replaced(overwrite, tiny_encoder, tiny_model_dir, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    out_dir = tmp_path / "mine"
    out_dir.mkdir()
    (out_dir / "notes.txt").write_text("my notes")
    with pytest.raises(InputError, match=r"mine: is not a cse export \(no \.cse_export\.json\)"):
        write_model_directory(tiny_encoder, tokenizer, out_dir, overwrite=overwrite)
    assert [path.name for path in out_dir.iterdir()] == ["notes.txt"]
    assert [path.name for path in tmp_path.iterdir()] == ["mine"]


@pytest.mark.parametrize("previous", [True, False])
def test_failure_while_writing_sentence_transformers_files_leaves_nothing_half_written(
    previous, tiny_encoder, tiny_model_dir, tmp_path, monkeypatch
):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    out_dir = tmp_path / "exported"
    if previous:
        _previous_export(tiny_encoder, tokenizer, out_dir)
    written = []

    def crash_midway(encoder, tokenizer, directory):  # the weights and tokenizer are staged already
        written.extend(path.name for path in directory.iterdir())
        (directory / "modules.json").write_text("[")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("cse.export.directory.write_sentence_transformers_files", crash_midway)
    with pytest.raises(InputError, match="nothing was replaced"):
        write_model_directory(tiny_encoder, tokenizer, out_dir, model_card="# card\n")
    assert "model.safetensors" in written
    assert [path.name for path in tmp_path.iterdir()] == (["exported"] if previous else [])
    if previous:
        assert (out_dir / "README.md").read_text() == "previous export\n"
        assert json.loads((out_dir / "modules.json").read_text())


def test_failed_swap_puts_the_previous_export_back(tiny_encoder, tiny_model_dir, tmp_path, monkeypatch):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    out_dir = tmp_path / "exported"
    _previous_export(tiny_encoder, tokenizer, out_dir)
    real_replace, calls = os.replace, []

    def replace(source, target):
        calls.append(Path(source).name)
        if len(calls) == 2:  # 1: previous export moved aside; 2: staging moved in
            raise OSError(5, "Input/output error")
        real_replace(source, target)

    monkeypatch.setattr("cse.export.staging.os.replace", replace)
    with pytest.raises(InputError, match=r"write failed \(Input/output error\)"):
        write_model_directory(tiny_encoder, tokenizer, out_dir)
    assert [path.name for path in tmp_path.iterdir()] == ["exported"]
    assert (out_dir / "README.md").read_text() == "previous export\n"


def test_model_card_and_sentence_transformers_files_are_written(tiny_encoder, tiny_model_dir, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    out_dir = write_model_directory(tiny_encoder, tokenizer, tmp_path / "exported", model_card="# my card\n")
    assert (out_dir / "README.md").read_text() == "# my card\n"
    modules = json.loads((out_dir / "modules.json").read_text())
    assert [module["type"].rsplit(".", 1)[1] for module in modules] == ["Transformer", "Pooling", "Dense"]
    assert json.loads((out_dir / "sentence_bert_config.json").read_text())["max_seq_length"] == 128
