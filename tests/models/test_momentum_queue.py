"""ESimCSE's momentum queue (`model.momentum_queue_size`, `model.momentum`): the EMA, the queue's contents and order,
the loss with the queued negatives and GradCache, against hand-kept copies and a hand-written InfoNCE (reference:
caskcsg/sentemb, ESimCSE/esimcse/models.py `cl_forward` and trainers.py `compute_loss`)."""

import copy
import math
import shutil
import warnings

import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch import Trainer
from sentences import TRIPLETS, tokenized_rows
from trainerless import without_trainer
from transformers import AutoTokenizer, BertModel

from cse.data.collate import ExampleCollator
from cse.data.datamodule import SimCSEDataModule
from cse.errors import InputError
from cse.models.batch import TrainingBatch
from cse.models.momentum_queue import check_momentum_mode
from cse.models.optimization import parameter_groups
from cse.models.simcse import SimCSE

pytestmark = pytest.mark.usefixtures("one_torch_thread")

QUEUE, MOMENTUM, TEMP = 5, 0.6, 0.05  # 5: not a multiple of the batch of 3, so the oldest batch is cut


def _batches(model_dir) -> list[TrainingBatch]:
    """Three (anchor, positive) batches of 3 examples, as word repetition makes them."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = tokenized_rows(tokenizer, [texts[:2] for texts in TRIPLETS + TRIPLETS[::-1]])
    return [ExampleCollator(tokenizer)(rows[start : start + 3]) for start in (0, 3, 6)]


def _module(model_dir, **options) -> SimCSE:
    torch.manual_seed(0)
    settings = {"pooler_type": "cls", "momentum_queue_size": QUEUE, "momentum": MOMENTUM, "temp": TEMP} | options
    return without_trainer(SimCSE(str(model_dir), **settings))


def _perturb(module: SimCSE, step: int) -> None:
    """Stands in for an optimizer step: move every trainable weight, so that the EMA has something to follow."""
    generator = torch.Generator().manual_seed(step)
    with torch.no_grad():
        for param in module.encoder.parameters():
            if param.requires_grad:
                param.add_(0.05 * torch.randn(param.shape, generator=generator))


def _momentum_embeddings(reference, module: SimCSE, batch: TrainingBatch) -> torch.Tensor:
    """The hand-kept momentum encoder (a SentenceEncoder copy, eval mode, with the live MLP) on each first view."""
    reference.mlp.load_state_dict(module.encoder.mlp.state_dict())
    sentences = {key: value[:, 0] for key, value in batch.items()}  # (B, 2, L) -> (B, L)
    with torch.no_grad():
        return reference.eval()(**sentences)  # cls + MLP at inference too, as mlp_only_train is false


def _infonce_with_queue(anchor, positive, queued) -> torch.Tensor:
    """-log softmax of each anchor's own positive among every positive and queued embedding, by a naive loop."""
    losses = []
    for i in range(anchor.size(0)):
        candidates = [*positive, *queued]
        logits = torch.stack([F.cosine_similarity(anchor[i], c, dim=0) / TEMP for c in candidates])
        losses.append(torch.logsumexp(logits, 0) - logits[i])
    return torch.stack(losses).mean()


def test_queue_holds_the_momentum_embeddings_of_the_last_sentences_in_order(tiny_model_dir):
    module = _module(tiny_model_dir).eval()  # no dropout in the trained encoder: losses can be recomputed exactly
    reference = copy.deepcopy(module.encoder)  # its backbone is the momentum backbone, kept by hand from its start
    reference.backbone.load_state_dict(module.momentum_queue.backbone.state_dict())
    kept: list[torch.Tensor] = []
    for step, batch in enumerate(_batches(tiny_model_dir)):
        _perturb(module, step)
        previous = [param.clone() for param in reference.backbone.parameters()]
        loss = module.training_step(batch, step)
        # The EMA, θ_m ← m θ_m + (1 - m) θ, from the weights the last "optimizer step" left, before the forward.
        for expected, param, momentum_param in zip(
            previous, module.encoder.backbone.parameters(), module.momentum_queue.backbone.parameters(), strict=True
        ):
            torch.testing.assert_close(momentum_param, MOMENTUM * expected + (1 - MOMENTUM) * param, rtol=0, atol=1e-6)
        momentum_backbone = module.momentum_queue.backbone
        for param, value in zip(reference.backbone.parameters(), momentum_backbone.parameters(), strict=True):
            param.data.copy_(value)  # follow the module's EMA (rounding apart, just checked)
        # The loss uses the queue as it was BEFORE this batch is enqueued.
        with torch.no_grad():
            views = [{key: value[:, view] for key, value in batch.items()} for view in (0, 1)]  # (B, 2, L) -> (B, L)
            anchor, positive = (module.encoder(**tokens) for tokens in views)
        queued = torch.stack(kept) if kept else torch.zeros(0, anchor.size(1))
        torch.testing.assert_close(loss.detach(), _infonce_with_queue(anchor, positive, queued), rtol=0, atol=1e-5)
        kept = (kept + list(_momentum_embeddings(reference, module, batch)))[-QUEUE:]  # oldest first
        torch.testing.assert_close(module.momentum_queue.queued(), torch.stack(kept), rtol=0, atol=1e-6)
    assert module.momentum_queue.filled == QUEUE
    assert not torch.equal(kept[0], kept[-1])


def test_momentum_backbone_starts_from_a_fresh_initialization_as_the_reference(tiny_model_dir, tmp_path):
    """The reference copies its backbone into `momentum_model` before `from_pretrained` loads the checkpoint, so its
    momentum model starts from BERT's initialization (transformers 4.2.1 `BertPreTrainedModel._init_weights`, as its
    log says "newly initialized"): weights ~ N(0, initializer_range), biases 0, LayerNorm weights 1."""
    model_dir = shutil.copytree(tiny_model_dir, tmp_path / "pretrained")
    pretrained = BertModel.from_pretrained(model_dir)
    with torch.no_grad():
        for param in pretrained.parameters():
            param.mul_(5.0).add_(0.5)  # far from any initialization, so a copy of these weights would show
    pretrained.save_pretrained(model_dir)
    module = _module(model_dir)
    std = module.encoder.backbone.config.initializer_range
    for name, param in module.momentum_queue.backbone.named_parameters():
        if name.endswith("LayerNorm.weight"):
            torch.testing.assert_close(param, torch.ones_like(param), rtol=0, atol=0, msg=name)
        elif name.endswith("bias"):
            torch.testing.assert_close(param, torch.zeros_like(param), rtol=0, atol=0, msg=name)
        else:  # n draws of N(0, σ): mean and sample std within 5 standard errors (σ / √n, σ / √(2n))
            count = param.numel()
            assert abs(param.mean().item()) < 5 * std / math.sqrt(count), name
            assert abs(param.std().item() - std) < 5 * std / math.sqrt(2 * count), name


def test_momentum_encoder_runs_without_dropout_and_takes_no_gradient(tiny_model_dir):
    module = _module(tiny_model_dir).train()
    assert not module.momentum_queue.backbone.training, "train() must leave the momentum backbone in eval mode"
    batch = _batches(tiny_model_dir)[0]
    module.training_step(batch, 0).backward()
    momentum_params = list(module.momentum_queue.parameters())
    assert all(not param.requires_grad and param.grad is None for param in momentum_params)
    trained = {id(param) for group in parameter_groups(module, 0.01) for param in group["params"]}
    assert trained.isdisjoint(id(param) for param in momentum_params), "the optimizer must not train it"
    first = module.momentum_queue.encode(module.encoder, {key: value[:, 0] for key, value in batch.items()})
    second = module.momentum_queue.encode(module.encoder, {key: value[:, 0] for key, value in batch.items()}, 2)
    torch.testing.assert_close(first, second, rtol=0, atol=1e-6)  # deterministic, chunked or not


def test_queue_empties_at_each_epoch_as_the_reference_trainer(tiny_model_dir):
    module = _module(tiny_model_dir)
    batch = _batches(tiny_model_dir)[0]
    module.training_step(batch, 0)
    assert module.momentum_queue.filled == 3
    assert module.momentum_queue.start_step(module.encoder, epoch=1).shape == (0, 32)


def test_queue_and_momentum_weights_survive_a_checkpoint(tiny_model_dir):
    module = _module(tiny_model_dir)
    for step, batch in enumerate(_batches(tiny_model_dir)[:2]):
        _perturb(module, step)
        module.training_step(batch, step)
    state = module.state_dict()
    assert any(key.startswith("momentum_queue.backbone.") for key in state)
    restored = _module(tiny_model_dir)
    restored.load_state_dict(state)
    assert (restored.momentum_queue.filled, restored.momentum_queue.epoch) == (QUEUE, 0)
    torch.testing.assert_close(restored.momentum_queue.queued(), module.momentum_queue.queued(), rtol=0, atol=0)


def test_gradcache_gives_the_loss_gradients_and_queue_of_the_whole_batch(tiny_model_dir):
    # Eval mode: chunks draw other dropout masks than the whole batch (tests/models/test_grad_cache.py covers those).
    modules = {size: _module(tiny_model_dir, mini_batch_size=size).eval() for size in (None, 2)}
    for step, batch in enumerate(_batches(tiny_model_dir)):
        losses = {}
        for size, module in modules.items():
            _perturb(module, step)
            module.zero_grad()
            losses[size] = module.training_step(batch, step)
            losses[size].backward()
    whole, chunked = modules[None], modules[2]
    torch.testing.assert_close(losses[2], losses[None], rtol=0, atol=1e-6)
    torch.testing.assert_close(chunked.momentum_queue.queued(), whole.momentum_queue.queued(), rtol=0, atol=1e-6)
    for (name, param), other in zip(whole.named_parameters(), chunked.parameters(), strict=True):
        if param.requires_grad:
            torch.testing.assert_close(other.grad, param.grad, rtol=0, atol=1e-6, msg=name)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"momentum_queue_size": -1}, "model.momentum_queue_size: must be 0 (off) or more"),
        ({"momentum_queue_size": 4, "momentum": 1.0}, "model.momentum: must be in [0, 1)"),
        ({"momentum_queue_size": 4, "do_mlm": True}, "model.momentum_queue_size: not with model.do_mlm"),
    ],
)
def test_bad_settings_are_one_line(tiny_model_dir, options, message):
    with pytest.raises(InputError) as error:
        SimCSE(str(tiny_model_dir), **options)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


@pytest.mark.parametrize("mode", ["pairs", "triplets", "scored"])
def test_queue_is_refused_for_supervised_data(mode):
    with pytest.raises(InputError, match=f"^model.momentum_queue_size: .* has {mode}; set it to 0$"):
        check_momentum_mode(160, mode)
    check_momentum_mode(0, mode)
    check_momentum_mode(160, "unsupervised")


@pytest.mark.parametrize("other_module_in_eval_mode", [False, True])
def test_lightnings_eval_mode_warning_is_left_out_for_the_momentum_backbone_alone(
    tiny_model_dir, tiny_data, tmp_path, other_module_in_eval_mode
):
    """The momentum backbone is in eval mode on purpose; Lightning warned of it at every ESimCSE fit. Another module
    in eval mode (a mistake) is still warned of."""
    module = SimCSE(str(tiny_model_dir), pooler_type="cls", momentum_queue_size=QUEUE)
    if other_module_in_eval_mode:
        module.encoder.mlp.eval()
    data = SimCSEDataModule(
        str(tiny_data.train_file), tokenizer_name_or_path=str(tiny_model_dir), batch_size=4, cache_dir=str(tmp_path)
    )
    trainer = Trainer(
        default_root_dir=tmp_path,
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(module, data)
    warned = [str(warning.message).split(" at the start")[0] for warning in caught]
    count = sum(1 for _ in module.momentum_queue.backbone.modules()) + sum(1 for _ in module.encoder.mlp.modules())
    expected = [f"Found {count} module(s) in eval mode"] if other_module_in_eval_mode else []
    assert [message for message in warned if message.endswith("in eval mode")] == expected
