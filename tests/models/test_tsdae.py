"""TSDAE (`model.objective: tsdae`) against sentence-transformers' `DenoisingAutoEncoderLoss`
(UKPLab/sentence-transformers, `sentence_transformers/sentence_transformer/losses/denoising_auto_encoder.py`), an
independent implementation: the same loss and gradients on the same tiny model and batch; the decoder's weights are
the encoder's tensors."""

import pytest
import torch
import yaml
from lightning.pytorch import Trainer
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.losses import DenoisingAutoEncoderLoss
from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
from trainerless import without_trainer
from transformers import AutoTokenizer

from cse.config.recipes import recipe_dir
from cse.errors import InputError
from cse.models.simcse import SimCSE
from cse.models.tsdae import reconstruction_loss
from cse.models.word_deletion import delete_words

ORIGINAL = ["a man is playing a guitar in the park", "the girl", "the dog is on the boy", "a woman is playing"]
NOISY = ["man guitar park", "girl", "the dog boy", "playing"]  # any damaged copies: the loss takes them as given
TSDAE = {"objective": "tsdae", "pooler_type": "cls_before_pooler"}


def _module(model_dir, **options) -> SimCSE:
    torch.manual_seed(0)  # cross-attention starts random
    return without_trainer(SimCSE(str(model_dir), **TSDAE | options)).double().eval()  # eval: no dropout


def _tokens(model_dir) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(damaged, original) (B, L) token tensors."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return tuple(dict(tokenizer(texts, padding=True, return_tensors="pt")) for texts in (NOISY, ORIGINAL))


def _loss(module: SimCSE, noisy: dict, original: dict, **options) -> torch.Tensor:
    return reconstruction_loss(module.encoder, module.tsdae_decoder, noisy, original, **options)


def _grads(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: param.grad for name, param in module.named_parameters() if param.grad is not None}


def test_the_decoder_shares_the_encoders_tensors_and_trains_them(tiny_model_dir):
    module = _module(tiny_model_dir)
    encoder, decoder = module.encoder.backbone, module.tsdae_decoder.decoder
    encoder_params = dict(encoder.named_parameters())
    shared = [(name, param) for name, param in decoder.bert.named_parameters() if name in encoder_params]
    # Every encoder parameter but BERT's NSP pooler (detached by SentenceEncoder) is a decoder tensor.
    assert {name for name, _ in shared} == set(encoder_params) and len(shared) == len(encoder_params)
    for name, param in shared:
        assert param is encoder_params[name] and param.data_ptr() == encoder_params[name].data_ptr(), name
    # The LM head decodes with the (shared) word embeddings, as BertLMHeadModel ties them.
    assert decoder.cls.predictions.decoder.weight.data_ptr() == encoder.embeddings.word_embeddings.weight.data_ptr()
    own = [name for name, _ in decoder.named_parameters() if name.removeprefix("bert.") not in encoder_params]
    assert own and all("crossattention" in name or name.startswith("cls.predictions") for name in own)
    # Parameters are listed once, so the optimizer updates each shared tensor once.
    unique = {param.data_ptr() for param in module.parameters()}
    assert len(unique) == len(list(module.parameters()))
    _loss(module, *_tokens(tiny_model_dir)).backward()
    for name, param in encoder.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_a_model_saved_in_bfloat16_decodes_in_float32(tiny_bf16_model_dir):
    torch.manual_seed(0)
    module = without_trainer(SimCSE(str(tiny_bf16_model_dir), **TSDAE)).eval()
    assert {parameter.dtype for parameter in module.parameters()} == {torch.float32}
    loss = _loss(module, *_tokens(tiny_bf16_model_dir))
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_loss_and_gradients_equal_sentence_transformers_denoising_auto_encoder_loss(tiny_model_dir):
    module = _module(tiny_model_dir)
    st_model = SentenceTransformer(modules=[Transformer(str(tiny_model_dir)), Pooling(32, "cls")], device="cpu")
    reference = DenoisingAutoEncoderLoss(st_model, tie_encoder_decoder=True)
    # The same starting weights (its tie makes the encoder's the decoder's, so the decoder's state is all of them).
    reference.decoder.load_state_dict(module.tsdae_decoder.decoder.state_dict())
    reference = reference.double().eval()
    st_model.eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    features = [tokenizer(texts, padding=True, return_tensors="pt") for texts in (NOISY, ORIGINAL)]
    expected = reference([dict(feature) for feature in features], labels=None)
    expected.backward()
    loss = _loss(module, *_tokens(tiny_model_dir))
    loss.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
    ours = _grads(module.tsdae_decoder.decoder)
    theirs = _grads(reference.decoder)
    assert ours.keys() == theirs.keys() and len(ours) > 40
    for name, grad in theirs.items():
        torch.testing.assert_close(ours[name], grad, rtol=1e-9, atol=1e-12, msg=name)


def test_gradcache_chunks_give_the_whole_batch_loss_and_gradients(tiny_model_dir):
    tokens = _tokens(tiny_model_dir)
    whole, chunked = _module(tiny_model_dir), _module(tiny_model_dir)
    losses = [_loss(whole, *tokens), _loss(chunked, *tokens, mini_batch_size=3)]
    for loss in losses:
        loss.backward()
    assert losses[1].item() == pytest.approx(losses[0].item(), rel=1e-12)
    expected = _grads(whole)
    for name, grad in _grads(chunked).items():
        torch.testing.assert_close(grad, expected[name], rtol=1e-9, atol=1e-12, msg=name)


def test_processes_average_to_the_token_mean_of_the_whole_batch(tiny_model_dir):
    """Two halves of unequal token counts, each normalized by the tokens of both (what all_gather gives under DDP):
    their mean loss and mean gradient are the whole batch's, not the mean of two per-half means."""
    module = _module(tiny_model_dir)
    noisy, original = _tokens(tiny_model_dir)
    halves = [
        [{key: value[rows] for key, value in tokens.items()} for tokens in (noisy, original)]
        for rows in (slice(0, 1), slice(1, 4))
    ]
    tokens = torch.stack([half[1]["attention_mask"][:, 1:].sum() for half in halves])
    assert tokens[0] != tokens[1]
    whole = _loss(module, noisy, original)
    whole.backward()
    expected = {name: grad.clone() for name, grad in _grads(module).items()}
    module.zero_grad()
    shares = [_loss(module, *half, all_gather=lambda _: tokens) for half in halves]
    (sum(shares) / 2).backward()  # DDP's average of the processes' gradients
    assert (sum(shares) / 2).item() == pytest.approx(whole.item(), rel=1e-12)
    for name, grad in _grads(module).items():
        torch.testing.assert_close(grad, expected[name], rtol=1e-9, atol=1e-12, msg=name)


def test_the_recipe_keeps_the_learning_rate_of_the_reference_run(tiny_model_dir):
    """train_tsdae_from_file.py: `model.fit(optimizer_params={'lr': 3e-5}, scheduler='constantlr')`."""
    settings = yaml.safe_load((recipe_dir() / "unsup-tsdae-bert-base.yaml").read_text())["model"]
    settings.pop("model_name_or_path")
    module = SimCSE(str(tiny_model_dir), **settings)
    module.trainer = Trainer(max_steps=5, accelerator="cpu", logger=False)
    optimizers = module.configure_optimizers()
    optimizer, scheduler = optimizers["optimizer"], optimizers["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(5):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == [3.0e-5] * 5


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pooler_type": "cls"}, "model.pooler_type: 'cls' adds SimCSE's MLP, which TSDAE does not have"),
        ({"do_mlm": True}, "model.do_mlm: True cannot be used with model.objective: tsdae"),
        ({"matryoshka_dims": [32, 16]}, "model.matryoshka_dims: [32, 16] cannot be used with model.objective: tsdae"),
        ({"compile": True}, "model.compile: True cannot be used with model.objective: tsdae"),
        ({"tsdae_deletion_ratio": 1.0}, "model.tsdae_deletion_ratio: must be in [0, 1) (TSDAE: 0.6), got 1.0"),
        ({"objective": "mae"}, "model.objective: must be contrastive or tsdae, got 'mae'"),
    ],
)
def test_settings_tsdae_cannot_use_are_one_line(tiny_model_dir, options, message):
    with pytest.raises(InputError) as error:
        SimCSE(str(tiny_model_dir), **TSDAE | options)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_the_training_step_deletes_words_then_rebuilds_the_original(tiny_model_dir):
    """The training step's loss is the reconstruction loss of the damaged sentences that `delete_words` draws from
    the same random state."""
    module = _module(tiny_model_dir)
    noisy, original = _tokens(tiny_model_dir)
    word_ids = torch.tensor(
        [
            [-1 if word is None else word for word in encoding.word_ids]
            for encoding in AutoTokenizer.from_pretrained(tiny_model_dir)(ORIGINAL, padding=True).encodings
        ]
    )
    batch = {key: value[:, None] for key, value in original.items()} | {"word_ids": word_ids[:, None]}
    torch.manual_seed(3)
    loss = module.training_step(batch, 0)
    torch.manual_seed(3)
    damaged = delete_words(original, word_ids, 0.6)
    assert not torch.equal(damaged["attention_mask"], original["attention_mask"])
    assert loss.item() == pytest.approx(_loss(module, damaged, original).item(), rel=1e-12)


def test_the_contrastive_objective_has_no_decoder(tiny_model_dir):
    assert SimCSE(str(tiny_model_dir)).tsdae_decoder is None
