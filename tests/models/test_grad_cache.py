"""GradCache (`model.mini_batch_size`): the loss and gradients of the whole batch, one chunk's activations."""

import copy

import pytest
import torch
from devices import CPU_AND_CUDA, ON_CUDA
from lightning.pytorch import Trainer
from sentences import TRIPLETS, tokenized_rows
from trainerless import without_trainer
from transformers import AutoTokenizer

from cse.data.collate import ExampleCollator
from cse.errors import InputError
from cse.losses.info_nce import InfoNCELoss
from cse.models import grad_cache
from cse.models.batch import TrainingBatch, token_tensors
from cse.models.grad_cache import checkpointed_rows, chunked_checkpoint
from cse.models.simcse import SimCSE

SEED = 123


def _batch(model_dir, views: int, device: str = "cpu") -> TrainingBatch:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    batch = ExampleCollator(tokenizer)(tokenized_rows(tokenizer, [texts[:views] for texts in TRIPLETS]))  # (B, k, L)
    return {key: value.to(device) for key, value in batch.items()}


@pytest.fixture(scope="module")
def base_module(tiny_model_dir):
    torch.manual_seed(0)
    return SimCSE(str(tiny_model_dir), pooler_type="cls", hard_negative_weight=1.5)


def _grads(module: SimCSE) -> dict[str, torch.Tensor]:
    """The gradient of every trainable parameter (each must have one)."""
    grads = {name: param.grad for name, param in module.named_parameters() if param.requires_grad}
    assert all(grad is not None for grad in grads.values())
    return grads


def _max_difference(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> float:
    assert first.keys() == second.keys()
    return max((first[name] - second[name]).abs().max().item() for name in first)


def _chunked_reference(module: SimCSE, batch: TrainingBatch, chunk: int) -> torch.Tensor:
    """Plain autograd, every activation kept: the encoder run on the same chunks in the same order (so with the same
    dropout masks), the embeddings concatenated and InfoNCE on the whole batch."""
    tokens = token_tensors(batch)  # (B, k, L) each
    if tokens["input_ids"].size(1) == 1:
        tokens = {key: value.repeat(1, 2, 1) for key, value in tokens.items()}  # (B, 1, L) -> (B, 2, L)
    size, views, length = tokens["input_ids"].shape
    flat = {key: value.reshape(size * views, length) for key, value in tokens.items()}  # (Bk, L)
    rows = chunk * views
    starts = range(0, size * views, rows)
    pieces = [module.encoder(**{key: value[start : start + rows] for key, value in flat.items()}) for start in starts]
    embeddings = torch.cat(pieces).view(size, views, -1)  # (Bk, H) -> (B, k, H)
    negative = embeddings[:, 2] if views == 3 else None
    return InfoNCELoss(0.05, module.hparams.hard_negative_weight)(embeddings[:, 0], embeddings[:, 1], negative)


@pytest.mark.parametrize("device", CPU_AND_CUDA)
@pytest.mark.parametrize(("views", "mini_batch_size"), [(1, 4), (3, 2)])
def test_loss_and_gradients_equal_the_whole_batch_with_dropout(
    base_module, tiny_model_dir, views, mini_batch_size, device
):
    """On a GPU the re-encoded chunks draw their dropout masks from CUDA's generator, as `checkpoint` saved it."""
    batch = _batch(tiny_model_dir, views, device)
    reference = copy.deepcopy(base_module).train().to(device)
    grad_cache = without_trainer(copy.deepcopy(base_module).train().to(device))
    grad_cache.hparams.mini_batch_size = mini_batch_size

    torch.manual_seed(SEED)
    expected = _chunked_reference(reference, batch, mini_batch_size)
    expected.backward()
    torch.manual_seed(SEED)
    loss = grad_cache.training_step(batch, 0)
    loss.backward()

    assert (loss - expected).abs().item() < 1e-5
    assert _max_difference(_grads(grad_cache), _grads(reference)) < 1e-5
    # Dropout is on: the same batch under other masks (one unchunked pass) has another loss.
    torch.manual_seed(SEED)
    assert (without_trainer(reference).training_step(batch, 0) - expected).abs().item() > 1e-4


def test_the_two_views_of_a_sentence_still_differ(base_module, tiny_model_dir):
    module = copy.deepcopy(base_module).train()
    flat = {key: value.repeat(1, 2, 1).flatten(0, 1) for key, value in _batch(tiny_model_dir, 1).items()}  # (2B, L)
    embeddings = torch.cat(chunked_checkpoint(module.encoder, flat, 4)).view(len(TRIPLETS), 2, -1)  # (B, 2, H)
    assert (embeddings[:, 0] - embeddings[:, 1]).abs().amax(dim=-1).min().item() > 1e-4


def test_chunks_are_rebuilt_one_at_a_time_last_first(base_module, tiny_model_dir):
    module = without_trainer(copy.deepcopy(base_module).train())
    module.hparams.mini_batch_size = 4  # 6 sentences, 2 views: chunks of 8 and 4 rows
    events = []
    layer = module.encoder.backbone.embeddings  # first in the forward pass, last in the backward pass
    layer.register_forward_hook(lambda _, inputs, output: events.append(("forward", len(output))))
    layer.register_full_backward_hook(lambda _, grad_in, grad_out: events.append(("backward", len(grad_out[0]))))
    loss = module.training_step(_batch(tiny_model_dir, 1), 0)
    assert events == [("forward", 8), ("forward", 4)]  # the first pass, in row order
    loss.backward()
    # Each chunk is re-encoded only once the previous one's backward is done: one chunk's activations at a time.
    assert events[2:] == [("forward", 4), ("backward", 4), ("forward", 8), ("backward", 8)]


def test_the_forward_pass_keeps_only_the_embeddings(base_module, tiny_model_dir):
    batch = _batch(tiny_model_dir, 3)
    saved = {}
    for mini_batch_size in (None, 2):
        module = without_trainer(copy.deepcopy(base_module).train())
        module.hparams.mini_batch_size = mini_batch_size
        sizes = []

        def pack(tensor: torch.Tensor, sizes=sizes) -> torch.Tensor:
            sizes.append(tensor.numel() * tensor.element_size())
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):  # what autograd keeps for backward
            module.training_step(batch, 0)
        saved[mini_batch_size] = sum(sizes)
    assert saved[2] < saved[None] / 10


@pytest.mark.parametrize(
    ("device", "precision"),
    [
        ("cpu", "bf16-mixed"),
        *(pytest.param("cuda", precision, marks=ON_CUDA) for precision in ("16-mixed", "bf16-mixed")),
    ],
)
def test_trains_under_mixed_precision_with_gradient_clipping(tiny_model_dir, tmp_path, device, precision):
    torch.manual_seed(0)
    module = SimCSE(str(tiny_model_dir), pooler_type="cls", learning_rate=1.0e-3, mini_batch_size=2)
    before = {name: param.detach().clone() for name, param in module.named_parameters()}
    batch = _batch(tiny_model_dir, 3)
    trainer = Trainer(
        default_root_dir=tmp_path,
        accelerator="gpu" if device == "cuda" else device,
        devices=1,
        precision=precision,
        gradient_clip_val=1.0,
        max_steps=2,
        log_every_n_steps=1,  # the loss reaches callback_metrics at logging steps
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader([batch, batch], batch_size=None))
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    after = dict(module.named_parameters())  # on the CPU again: Lightning's teardown moves the module there
    assert all(not torch.equal(before[name], after[name]) for name in before if "layer.0.attention" in name)


def test_mlm_loss_is_the_mean_over_all_masked_tokens_of_the_batch(tiny_mlm_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_mlm_dir)
    torch.manual_seed(0)
    batch = ExampleCollator(tokenizer, mlm_probability=0.3)(
        tokenized_rows(tokenizer, [texts[:2] for texts in TRIPLETS])
    )
    losses, grads = {}, {}
    for mini_batch_size in (None, 4):  # chunks of 4 and 2 examples hold different numbers of masked tokens
        torch.manual_seed(0)
        module = SimCSE(str(tiny_mlm_dir), pooler_type="avg", do_mlm=True, mini_batch_size=mini_batch_size)
        without_trainer(module)
        losses[mini_batch_size] = module.eval().training_step(batch, 0)
        losses[mini_batch_size].backward()
        grads[mini_batch_size] = _grads(module)
    assert (losses[4] - losses[None]).abs().item() < 1e-5
    assert _max_difference(grads[4], grads[None]) < 1e-5


def test_mini_batch_size_must_be_positive(tiny_model_dir):
    with pytest.raises(InputError, match=r"model.mini_batch_size: must be null \(no chunks\) or >= 1, got 0"):
        SimCSE(str(tiny_model_dir), mini_batch_size=0)


@pytest.mark.parametrize("device", CPU_AND_CUDA)
def test_chunks_are_re_encoded_under_the_forward_pass_autocast(base_module, tiny_model_dir, device):
    """GradCache under mixed precision (CPU autocast stands in for CUDA's, and CUDA's on a GPU): the re-encoded chunks
    run in bf16 again, with the same dropout masks, so the gradients equal plain autograd's under the same autocast.
    CUDA's backward of the embeddings adds the rows' gradients in no fixed order, hence its looser tolerance."""
    tolerance = 1e-6 if device == "cpu" else 1e-5  # both far below the 1e-4 that tells bf16 from float32 below
    batch = _batch(tiny_model_dir, 3, device)
    reference = copy.deepcopy(base_module).train().to(device)
    grad_cache = without_trainer(copy.deepcopy(base_module).train().to(device))
    grad_cache.hparams.mini_batch_size = 2
    with torch.autocast(device, dtype=torch.bfloat16):
        torch.manual_seed(SEED)
        expected = _chunked_reference(reference, batch, 2)
        torch.manual_seed(SEED)
        loss = grad_cache.training_step(batch, 0)
    expected.backward()
    loss.backward()
    assert (loss - expected).abs().item() < tolerance
    assert _max_difference(_grads(grad_cache), _grads(reference)) < tolerance
    # The same chunks re-encoded in float32 would give other gradients: bf16 rounding is far above the tolerance.
    fp32 = copy.deepcopy(base_module).train().to(device)
    torch.manual_seed(SEED)
    _chunked_reference(fp32, batch, 2).backward()
    assert _max_difference(_grads(fp32), _grads(reference)) > 1e-4


def test_chunk_tensors_reach_checkpoint_where_it_saves_device_rng_states(tiny_encoder, tiny_model_dir, monkeypatch):
    """On a GPU the dropout masks of a re-encoded chunk come from the CUDA RNG state that `checkpoint` saved, and it
    saves the states of the devices of its positional tensor arguments only. Here checkpoint is told it runs on an
    initialized CUDA machine (no device is touched: the tensors are on the CPU) and the call that collects those
    devices is watched."""
    collected = []
    get_device_states = torch.utils.checkpoint.get_device_states

    def watched(*args):
        collected.append(args)
        return get_device_states(*args)

    monkeypatch.setattr(torch.utils.checkpoint.DefaultDeviceType, "_default_device_type", "cuda")
    monkeypatch.setattr(torch.cuda, "_initialized", True)
    monkeypatch.setattr(torch.utils.checkpoint, "get_device_states", watched)
    flat = {key: value.flatten(0, 1) for key, value in _batch(tiny_model_dir, 2).items()}  # (B, 2, L) -> (2B, L)
    chunked_checkpoint(tiny_encoder.train(), flat, 4)
    assert len(collected) == 3  # 12 rows in chunks of 4
    for index, arguments in enumerate(collected):
        assert [tensor.data_ptr() for tensor in arguments] == [
            value[4 * index : 4 * index + 4].data_ptr() for value in flat.values()
        ]


def test_checkpointed_rows_concatenate_chunks_and_keep_a_single_output_as_it_is():
    weight = torch.randn(4, 3, requires_grad=True)
    outputs = []

    def project(rows: torch.Tensor) -> torch.Tensor:
        outputs.append(rows @ weight)  # (b, 4) -> (b, 3)
        return outputs[-1]

    rows = torch.randn(5, 4)
    whole = checkpointed_rows(project, {"rows": rows}, None)
    assert whole is outputs[0]  # one output: no copy
    chunked = checkpointed_rows(project, {"rows": rows}, 2)  # 2 + 2 + 1 rows
    assert chunked.shape == (5, 3) and torch.allclose(chunked, rows @ weight)


def test_chunks_on_apples_mps_are_re_encoded_with_the_forwards_dropout_masks(monkeypatch):
    """torch's checkpoint saves no MPS RNG state; the chunks here stand for MPS tensors, and their dropout draws from
    "MPS's generator", a CPU generator behind torch.mps's getter and setter."""
    mps = torch.Generator().manual_seed(SEED)
    monkeypatch.setattr(torch.mps, "get_rng_state", mps.get_state)
    monkeypatch.setattr(torch.mps, "set_rng_state", mps.set_state)
    monkeypatch.setattr(grad_cache, "_on_mps", lambda chunk: True)

    def dropout(x: torch.Tensor) -> torch.Tensor:  # (b, H) -> (b, H), half the entries zeroed, the rest doubled
        return x * (torch.rand(x.shape, generator=mps) > 0.5) * 2.0

    x = torch.randn(6, 4, requires_grad=True)
    weights = torch.randn(6, 4)
    (checkpointed_rows(dropout, {"x": x}, chunk_rows=2) * weights).sum().backward()
    after_step = mps.get_state()

    mps.manual_seed(SEED)
    plain = x.detach().clone().requires_grad_()
    (torch.cat([dropout(chunk) for chunk in plain.split(2)]) * weights).sum().backward()
    assert torch.equal(x.grad, plain.grad)  # the masks of the forward: the gradient is weights * mask * 2
    assert torch.equal(after_step, mps.get_state())  # re-encoding left the generator where the forward had
