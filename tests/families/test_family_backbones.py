"""What cse assumes of every encoder family's backbone and tokenizer: the inputs it makes, the pooler it has, the
layers the multi-layer poolers read, and dropout noise in training (unsupervised SimCSE's only augmentation)."""

import json
import shutil

import pytest
import torch
from exported_embeddings import SENTENCES
from tiny_families import FAMILIES
from transformers import AutoModel, AutoTokenizer

from cse.models.encoder import SentenceEncoder
from cse.models.mode_settings import has_dropout

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("family", FAMILIES)
def test_backbone_gives_what_the_poolers_read(family, family_model_dir):
    model_dir = family_model_dir(family)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    assert model.config.model_type == FAMILIES[family].model_type
    assert len(tokenizer) == model.config.vocab_size
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    assert ("token_type_ids" in batch) == FAMILIES[family].token_type_ids
    assert (getattr(model, "pooler", None) is not None) == FAMILIES[family].has_pooler
    with torch.no_grad():
        output = model(**batch, output_hidden_states=True)
    # As BERT's, which SimCSE's poolers were written for: the embeddings' output, then one state per layer, the last
    # one being last_hidden_state (avg_top2 reads the last two, avg_first_last hidden_states[1] and the last).
    assert len(output.hidden_states) == model.config.num_hidden_layers + 1
    assert torch.equal(output.hidden_states[-1], output.last_hidden_state)


@pytest.mark.parametrize("family", FAMILIES)
def test_two_training_forwards_of_one_batch_differ(family, family_model_dir):
    """`from_pretrained` returns eval mode; the encoder must come in train mode, with its dropout on."""
    model_dir = family_model_dir(family)
    encoder = SentenceEncoder.from_pretrained(str(model_dir), "avg")
    batch = AutoTokenizer.from_pretrained(model_dir)(SENTENCES, padding=True, return_tensors="pt")
    assert encoder.training and has_dropout(encoder.backbone)
    with torch.no_grad():
        assert not torch.allclose(encoder(**batch), encoder(**batch))
        encoder.eval()
        assert torch.equal(encoder(**batch), encoder(**batch))


def test_a_model_without_dropout_is_warned_about_for_unsupervised_training(
    family_model_dir, run_cse, shrunk_recipe_args, tmp_path, monkeypatch, caplog
):
    """ModernBERT's configs set every dropout to 0: unsupervised SimCSE's two views of a sentence would be equal."""
    model_dir = shutil.copytree(family_model_dir("modernbert"), tmp_path / "modernbert")
    config = json.loads((model_dir / "config.json").read_text())
    config.update(attention_dropout=0.0, embedding_dropout=0.0, mlp_dropout=0.0)  # ModernBERT-base's values
    (model_dir / "config.json").write_text(json.dumps(config))

    encoder = SentenceEncoder.from_pretrained(str(model_dir), "avg")
    batch = AutoTokenizer.from_pretrained(model_dir)(SENTENCES, padding=True, return_tensors="pt")
    assert encoder.training and not has_dropout(encoder.backbone)
    with torch.no_grad():
        assert torch.equal(encoder(**batch), encoder(**batch))

    monkeypatch.chdir(tmp_path)
    args = shrunk_recipe_args("quickstart", model_dir=model_dir, max_steps=1, val_check_interval=1)
    code, _, err = run_cse([*args, "--trainer.num_sanity_val_steps", "0"])
    assert code == 0, err
    warnings = [record.getMessage() for record in caplog.records if record.getMessage().startswith("warning: ")]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"warning: model.model_name_or_path: '{model_dir}' drops nothing in training")


@pytest.mark.parametrize("family", [name for name, family in FAMILIES.items() if not family.token_type_ids])
def test_token_type_ids_from_a_tokenizer_of_another_class_change_nothing(family, family_model_dir):
    """A DistilBERT directory whose tokenizer files name no class gets BERT's tokenizer from AutoTokenizer (transformers
    maps `distilbert` to it), which makes `token_type_ids` (all 0) for a model that takes none: nothing changes."""
    model_dir = family_model_dir(family)
    encoder = SentenceEncoder.from_pretrained(str(model_dir), "avg").eval()
    batch = AutoTokenizer.from_pretrained(model_dir)(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = encoder(**batch)
        torch.testing.assert_close(encoder(**batch, token_type_ids=torch.zeros_like(batch["input_ids"])), expected)
