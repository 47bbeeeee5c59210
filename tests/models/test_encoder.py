import pytest
import torch
from transformers import AutoTokenizer

from cse.errors import InputError
from cse.models.encoder import SentenceEncoder
from cse.models.poolers import POOLER_TYPES

SENTENCES = ["a man is playing a guitar.", "the dog is in the park", "a girl"]


@pytest.fixture(scope="module")
def batch(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    return dict(tokenizer(SENTENCES, padding=True, return_tensors="pt"))


def test_loaded_encoder_is_in_train_mode_with_dropout_active(tiny_model_dir):
    encoder = SentenceEncoder.from_pretrained(str(tiny_model_dir))
    assert encoder.training
    assert all(module.training for module in encoder.modules() if isinstance(module, torch.nn.Dropout))


@pytest.mark.parametrize("pooler_type", POOLER_TYPES)
def test_views_differ_in_train_and_match_in_eval(tiny_model_dir, batch, pooler_type):
    encoder = SentenceEncoder.from_pretrained(str(tiny_model_dir), pooler_type=pooler_type)
    first, second = encoder(**batch), encoder(**batch)
    assert first.shape == (len(SENTENCES), 32)
    assert not torch.allclose(first, second), "dropout is off in training: unsupervised SimCSE would learn nothing"
    encoder.eval()
    with torch.no_grad():
        torch.testing.assert_close(encoder(**batch), encoder(**batch), rtol=0, atol=0)


def test_mlp_only_train_uses_the_mlp_in_training_only(tiny_model_dir, batch):
    encoder = SentenceEncoder.from_pretrained(str(tiny_model_dir), pooler_type="cls", mlp_only_train=True)
    torch.manual_seed(3)
    trained = encoder(**batch)
    torch.manual_seed(3)
    raw_cls = encoder.backbone(**batch).last_hidden_state[:, 0]
    torch.testing.assert_close(trained, encoder.mlp(raw_cls))
    encoder.eval()
    with torch.no_grad():
        torch.testing.assert_close(encoder(**batch), encoder.backbone(**batch).last_hidden_state[:, 0])


def test_cls_keeps_the_mlp_at_inference(tiny_model_dir, batch):
    encoder = SentenceEncoder.from_pretrained(str(tiny_model_dir), pooler_type="cls").eval()
    with torch.no_grad():
        expected = encoder.mlp(encoder.backbone(**batch).last_hidden_state[:, 0])
        torch.testing.assert_close(encoder(**batch), expected)


def test_backbone_pooler_is_detached_and_frozen(tiny_encoder):
    assert tiny_encoder.backbone.pooler is None
    assert not any(param.requires_grad for param in tiny_encoder.hf_pooler.parameters())


def test_export_state_dict_puts_the_mlp_in_the_pooler(tiny_encoder):
    state = tiny_encoder.export_state_dict()
    assert torch.equal(state["pooler.dense.weight"], tiny_encoder.mlp.dense.weight)
    assert torch.equal(state["pooler.dense.bias"], tiny_encoder.mlp.dense.bias)


def test_export_state_dict_keeps_the_original_pooler_when_mlp_is_train_only(tiny_model_dir):
    encoder = SentenceEncoder.from_pretrained(str(tiny_model_dir), pooler_type="cls", mlp_only_train=True)
    state = encoder.export_state_dict()
    assert torch.equal(state["pooler.dense.weight"], encoder.hf_pooler.dense.weight)
    assert not torch.equal(state["pooler.dense.weight"], encoder.mlp.dense.weight)


def test_bad_pooler_settings_are_input_errors(tiny_model_dir):
    with pytest.raises(InputError, match="unknown pooler 'max'"):
        SentenceEncoder.from_pretrained(str(tiny_model_dir), pooler_type="max")
    with pytest.raises(InputError, match="mlp_only_train"):
        SentenceEncoder.from_pretrained(str(tiny_model_dir), pooler_type="avg", mlp_only_train=True)


@pytest.mark.parametrize("pooler_type", POOLER_TYPES)
def test_extra_padding_leaves_the_embeddings_unchanged(tiny_model_dir, pooler_type):
    """Padding to a multiple of 8 or to max_seq_length (cse's collators) is masked out: the same embeddings as each
    sentence encoded alone, unpadded."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    encoder = SentenceEncoder.from_pretrained(str(tiny_model_dir), pooler_type=pooler_type).eval()
    with torch.no_grad():
        padded = encoder(**dict(tokenizer(SENTENCES, padding="max_length", max_length=32, return_tensors="pt")))
        alone = torch.cat([encoder(**dict(tokenizer([text], return_tensors="pt"))) for text in SENTENCES])
    torch.testing.assert_close(padded, alone, rtol=1e-5, atol=1e-6)


def test_attention_runs_through_pytorch_sdpa(tiny_encoder):
    """transformers' default for BERT where torch has scaled_dot_product_attention (fused kernels on a GPU)."""
    assert tiny_encoder.backbone.config._attn_implementation == "sdpa"


def test_a_model_saved_in_bfloat16_trains_in_float32(tiny_bf16_model_dir, batch):
    from safetensors.torch import load_file

    saved = load_file(tiny_bf16_model_dir / "model.safetensors")
    assert {tensor.dtype for tensor in saved.values()} == {torch.bfloat16}
    encoder = SentenceEncoder.from_pretrained(str(tiny_bf16_model_dir), "cls")
    assert {parameter.dtype for parameter in encoder.parameters()} == {torch.float32}
    state = encoder.backbone.state_dict()
    for name, tensor in saved.items():
        if not name.startswith("pooler."):
            torch.testing.assert_close(state[name], tensor.float(), atol=0, rtol=0)
    loss = encoder(**batch).pow(2).sum()  # the float32 MLP on the float32 backbone: no dtype mismatch
    loss.backward()
    assert encoder.backbone.embeddings.word_embeddings.weight.grad.dtype == torch.float32
