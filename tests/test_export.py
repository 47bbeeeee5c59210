import json

import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from cse.errors import InputError
from cse.export import CSE_CONFIG_NAME, export_hf_model
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
    out_dir = export_hf_model(encoder, tokenizer, tmp_path / "exported")
    config = json.loads((out_dir / CSE_CONFIG_NAME).read_text())
    assert config["pooler_type"] == pooler_type and config["mlp_only_train"] == mlp_only_train
    assert (out_dir / "model.safetensors").is_file() and (out_dir / "tokenizer.json").is_file()
    with torch.no_grad():
        expected = encoder.eval()(**tokenizer(SENTENCES, padding=True, return_tensors="pt"))
    actual = _embed_with_transformers(
        out_dir, config["embedding"] if config["embedding"] != "cls" else "cls_before_pooler"
    )
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)


def test_export_replaces_previous_directory_atomically(tiny_encoder, tiny_model_dir, tmp_path, monkeypatch):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    out_dir = tmp_path / "exported"
    out_dir.mkdir()
    (out_dir / "old.txt").write_text("previous export")

    def failing_save(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tokenizer, "save_pretrained", failing_save)
    with pytest.raises(InputError, match=r"write failed \(No space left on device\); nothing was replaced"):
        export_hf_model(tiny_encoder, tokenizer, out_dir)
    assert [path.name for path in tmp_path.iterdir()] == ["exported"], "a staging directory was left behind"
    assert [path.name for path in out_dir.iterdir()] == ["old.txt"]

    monkeypatch.undo()
    export_hf_model(tiny_encoder, tokenizer, out_dir)
    assert not (out_dir / "old.txt").exists() and (out_dir / "config.json").is_file()
    assert [path.name for path in tmp_path.iterdir()] == ["exported"]
