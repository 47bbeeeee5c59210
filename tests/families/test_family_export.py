"""Every (encoder family, pooler) pair that `cse fit` does not train in test_family_fit.py: an in-memory encoder is
exported, and transformers, sentence-transformers and `cse` give its embedding back."""

import json
import shutil

import pytest
import torch
from exported_embeddings import SENTENCES, assert_loaders_give
from tiny_families import FAMILIES, FITTED, MAX_LENGTH, POOLINGS, pooling_id
from transformers import AutoTokenizer

from cse.errors import InputError
from cse.export.directory import write_model_directory
from cse.models.encoder import SentenceEncoder
from cse.models.loading import load_tokenizer

NOT_FITTED = [
    (family, pooling) for family in FAMILIES for pooling in POOLINGS if pooling not in FITTED[family].values()
]


@pytest.mark.parametrize(
    ("family", "pooling"), NOT_FITTED, ids=[f"{family}-{pooling_id(pooling)}" for family, pooling in NOT_FITTED]
)
def test_export_gives_the_encoders_embedding_to_every_loader(family, pooling, family_model_dir, tmp_path):
    model_dir = family_model_dir(family)
    pooler_type, mlp_only_train = pooling
    if pooling == ("cls", False) and not FAMILIES[family].has_pooler:
        # The MLP kept at inference is exported as the model's pooler, which this family has no place for.
        with pytest.raises(InputError, match=r"has no Linear pooler; set model.mlp_only_train: true") as error:
            SentenceEncoder.from_pretrained(str(model_dir), pooler_type, mlp_only_train)
        assert "\n" not in str(error.value)
        return
    torch.manual_seed(0)
    encoder = SentenceEncoder.from_pretrained(str(model_dir), pooler_type, mlp_only_train)
    with torch.no_grad():  # every weight (the MLP too) away from the saved model, as training leaves them
        for parameter in encoder.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    exported = write_model_directory(encoder, tokenizer, tmp_path / "exported")
    with torch.no_grad():
        expected = encoder.eval()(**tokenizer(SENTENCES, padding=True, return_tensors="pt"))
    assert_loaders_give(expected, exported)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_tokenizer_without_a_limit_truncates_at_the_models_positions(family, family_model_dir, tmp_path):
    """Many tokenizers set no `model_max_length`: every loader still stops where the model's positions end (RoBERTa
    and XLM-R hold two fewer positions than embeddings), with the same embedding."""
    model_dir = shutil.copytree(family_model_dir(family), tmp_path / "model")
    settings = json.loads((model_dir / "tokenizer_config.json").read_text())
    del settings["model_max_length"]
    (model_dir / "tokenizer_config.json").write_text(json.dumps(settings))
    tokenizer = load_tokenizer(str(model_dir))
    assert tokenizer.model_max_length == MAX_LENGTH  # the positions every tiny model was given
    encoder = SentenceEncoder.from_pretrained(str(model_dir), "avg")
    exported = write_model_directory(encoder, tokenizer, tmp_path / "exported")
    sentences = [" ".join(SENTENCES * 20), SENTENCES[0]]  # hundreds of tokens, then a short one
    batch = AutoTokenizer.from_pretrained(model_dir)(sentences, padding=True, truncation=True, max_length=MAX_LENGTH)
    assert len(batch["input_ids"][0]) == MAX_LENGTH
    with torch.no_grad():
        expected = encoder.eval()(**batch.convert_to_tensors("pt"))
    assert_loaders_give(expected, exported, sentences)
