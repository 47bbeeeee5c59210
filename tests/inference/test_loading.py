import shutil

import pytest
import torch
from lightning.pytorch import Trainer
from transformers import AutoModel, AutoTokenizer

from cse.errors import InputError
from cse.export.directory import write_model_directory
from cse.inference.loading import encode_sentences, load_encoder
from cse.models.simcse import SimCSE

SENTENCES = ["a man is playing a guitar in the park.", "a dog", "the girl is on the boy", "a"]


def _checkpoint(module: SimCSE, path) -> None:
    trainer = Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(path)


@pytest.mark.parametrize(("pooler_type", "mlp_only_train"), [("cls", False), ("cls", True), ("avg_first_last", False)])
def test_checkpoint_is_self_contained(tiny_model_dir, tmp_path, pooler_type, mlp_only_train):
    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir, base)
    module = SimCSE(str(base), pooler_type=pooler_type, mlp_only_train=mlp_only_train).eval()
    _checkpoint(module, tmp_path / "model.ckpt")
    shutil.rmtree(base)  # the base model is gone: the checkpoint alone must do
    encoder, tokenizer = load_encoder(tmp_path / "model.ckpt")
    assert not encoder.training
    batch = dict(tokenizer(SENTENCES, padding=True, return_tensors="pt"))
    with torch.no_grad():
        torch.testing.assert_close(encoder(**batch), module(batch))


def test_encode_sentences_matches_one_by_one_and_keeps_order(tiny_encoder, tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tiny_encoder.eval()
    embeddings = encode_sentences(tiny_encoder, tokenizer, SENTENCES, batch_size=3)
    assert embeddings.shape == (4, 32) and embeddings.dtype == torch.float32
    with torch.no_grad():
        one_by_one = torch.cat([tiny_encoder(**tokenizer([sentence], return_tensors="pt")) for sentence in SENTENCES])
    torch.testing.assert_close(embeddings, one_by_one, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("pooler_type", "mlp_only_train"), [("cls", False), ("cls", True), ("avg", False)])
def test_exported_directory_loads_with_its_own_pooling(tiny_model_dir, tmp_path, pooler_type, mlp_only_train):
    from cse.models.encoder import SentenceEncoder

    trained = SentenceEncoder.from_pretrained(str(tiny_model_dir), pooler_type, mlp_only_train).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    write_model_directory(trained, tokenizer, tmp_path / "exported")
    loaded, loaded_tokenizer = load_encoder(tmp_path / "exported")
    torch.testing.assert_close(
        encode_sentences(loaded, loaded_tokenizer, SENTENCES), encode_sentences(trained, tokenizer, SENTENCES)
    )


def test_cls_on_a_plain_model_is_its_pooler_output(tiny_model_dir):
    encoder, tokenizer = load_encoder(tiny_model_dir, "cls")
    model = AutoModel.from_pretrained(tiny_model_dir).eval()
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(encoder(**batch), model(**batch).pooler_output)


def test_cls_without_pooler_weights_is_an_error(tiny_model_dir, tmp_path):
    model = AutoModel.from_pretrained(tiny_model_dir, add_pooling_layer=False)
    model.save_pretrained(tmp_path / "no-pooler")
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(tmp_path / "no-pooler")
    with pytest.raises(InputError, match="has none"):
        load_encoder(tmp_path / "no-pooler", "cls")
    encoder, _ = load_encoder(tmp_path / "no-pooler", "avg")  # other poolers do not need it
    assert encoder.pooler_type == "avg"


def test_loading_errors(tiny_model_dir, tmp_path):
    with pytest.raises(InputError, match="say how to pool with --pooler"):
        load_encoder(tiny_model_dir)
    with pytest.raises(InputError, match="pooler 'max'"):
        load_encoder(tiny_model_dir, "max")
    with pytest.raises(InputError, match="no such file"):
        load_encoder(tmp_path / "missing.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="junk.ckpt: not a PyTorch checkpoint"):
        load_encoder(tmp_path / "junk.ckpt")
    module = SimCSE(str(tiny_model_dir), pooler_type="avg")
    _checkpoint(module, tmp_path / "avg.ckpt")
    with pytest.raises(InputError, match="trained to embed with pooler 'avg', not 'cls'"):
        load_encoder(tmp_path / "avg.ckpt", "cls")


def test_a_promptbert_encoder_embeds_the_sentences_of_the_reference_s_test(tiny_model_dir):
    """`cse eval`, `cse encode` and `load_model` embed through `encode_sentences`: a PromptBERT model's sentences as
    kongds/Prompt-BERT's evaluation.py:201 fills them in (its words joined by one space, "." appended unless it ends
    in . ? " or ')."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    encoder = SimCSE(str(tiny_model_dir), pooler_type="prompt", prompt_template="the [X] is [MASK] .").encoder.eval()
    given = ["a man is playing a guitar", "is it a dog?", " a  'girl' ", "the boy.", "wow!", "", "on\tthe park \n"]
    by_hand = ["a man is playing a guitar.", "is it a dog?", "a 'girl'", "the boy.", "wow!.", "", "on the park."]
    seen = []

    def record(_module, _args, kwargs):
        for ids, mask in zip(kwargs["input_ids"], kwargs["attention_mask"], strict=True):
            seen.append(ids[mask.bool()].tolist())

    encoder.register_forward_pre_hook(record, with_kwargs=True)
    embeddings = encode_sentences(encoder, tokenizer, given, batch_size=3)
    assert sorted(seen) == sorted(tokenizer(by_hand)["input_ids"])
    with torch.no_grad():
        one_by_one = torch.cat([encoder(**tokenizer([sentence], return_tensors="pt")) for sentence in by_hand])
    torch.testing.assert_close(embeddings, one_by_one, atol=1e-5, rtol=1e-5)
