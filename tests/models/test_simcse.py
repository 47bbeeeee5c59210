import csv
from types import SimpleNamespace

import pytest
import sentences
import torch
import torch.nn.functional as F
from devices import ON_CUDA
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.plugins import MixedPrecision
from scipy.stats import pearsonr, spearmanr
from trainerless import without_trainer

from cse.data.datamodule import SimCSEDataModule
from cse.data.scored_pairs import read_scored_pairs
from cse.models.batch import BatchError, TrainingBatch
from cse.models.simcse import SimCSE


class _Recorder(Callback):
    """Records, at every training batch, whether dropout is on, and the learning rate."""

    def __init__(self) -> None:
        self.dropout_on: list[bool] = []
        self.rates: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        dropouts = [module for module in pl_module.modules() if isinstance(module, torch.nn.Dropout)]
        self.dropout_on.append(pl_module.training and all(module.training for module in dropouts))
        self.rates.append(trainer.optimizers[0].param_groups[0]["lr"])


@pytest.fixture
def datamodule(tiny_model_dir, tiny_data, tmp_path):
    return SimCSEDataModule(
        str(tiny_data.train_file),
        dev_file=str(tiny_data.dev_file),
        tokenizer_name_or_path=str(tiny_model_dir),
        batch_size=16,
        max_seq_length=24,
        cache_dir=str(tmp_path / "cache"),
    )


def _trainer(tmp_path, **options) -> Trainer:
    defaults = {"accelerator": "cpu", "precision": "32-true", "logger": False, "enable_checkpointing": False}
    return Trainer(
        default_root_dir=tmp_path, enable_progress_bar=False, enable_model_summary=False, **defaults | options
    )


def test_dropout_stays_on_through_fit_and_after_validation(tiny_model_dir, datamodule, tmp_path):
    recorder = _Recorder()
    module = SimCSE(str(tiny_model_dir), pooler_type="cls", mlp_only_train=True, learning_rate=1.0e-3, warmup_steps=2)
    _trainer(tmp_path, max_steps=8, val_check_interval=3, callbacks=[recorder]).fit(module, datamodule)
    assert recorder.dropout_on == [True] * 8
    # Linear warmup over 2 steps, then linear decay to 0 at step 8, stepped per optimizer step.
    expected = [1.0e-3 * step / 2 if step < 2 else 1.0e-3 * (8 - step) / 6 for step in range(8)]
    assert recorder.rates == pytest.approx(expected)


class _StopAfter(Callback):
    """Asks the trainer to stop after optimizer step `step`, as `max_time` or early stopping would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        trainer.should_stop = trainer.global_step == self.step


def test_learning_rate_is_logged_with_the_loss_at_each_written_step(tiny_model_dir, datamodule, tmp_path):
    """Logging every 3 steps and stopping after step 5: rows at steps 3 and 5 (the stop), each with the rate that
    step trained with, by the linear schedule to 0 at step 7."""
    module = SimCSE(str(tiny_model_dir), learning_rate=1.0e-3)
    logger = CSVLogger(tmp_path)
    trainer = _trainer(tmp_path, max_steps=7, log_every_n_steps=3, limit_val_batches=0, logger=logger)
    trainer.callbacks.append(_StopAfter(5))
    trainer.fit(module, datamodule)
    with open(f"{logger.log_dir}/metrics.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["train/loss"]]
    steps = [int(row["step"]) + 1 for row in rows]  # the CSV counts steps from 0
    assert steps == [3, 5]
    assert [float(row["train/lr"]) for row in rows] == pytest.approx([1.0e-3 * (7 - (step - 1)) / 7 for step in steps])


class _LossReader(Callback):
    """Records each step's returned loss, and the `train/loss` that `trainer.callback_metrics` holds in this callback's
    `on_train_batch_end` (None when absent); with `monitor`, it declares that it monitors that metric."""

    def __init__(self, monitor: str | None = None) -> None:
        self.monitor = monitor
        self.returned: list[float] = []
        self.seen: list[float | None] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.returned.append(outputs["loss"].item())
        seen = trainer.callback_metrics.get("train/loss")
        self.seen.append(None if seen is None else seen.item())


@pytest.mark.parametrize("monitor", ["train/loss", "val/stsb_spearman"])
def test_the_loss_is_logged_at_every_step_only_when_a_callback_monitors_it(
    tiny_model_dir, datamodule, tmp_path, monkeypatch, monitor
):
    """`self.log` costs host time at every call: without a callback monitoring the loss it runs at the logging steps
    only (3 and 6 of 7, for the loss and the rate), each logging that step's loss."""
    calls: list[tuple[int, str]] = []
    original = SimCSE.log

    def counted(self, name, *args, **kwargs):
        calls.append((self.trainer.global_step, name))
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(SimCSE, "log", counted)
    reader = _LossReader(monitor)
    module = SimCSE(str(tiny_model_dir), learning_rate=1.0e-3)
    trainer = _trainer(tmp_path, max_steps=7, limit_val_batches=0, log_every_n_steps=3, callbacks=[reader])
    trainer.fit(module, datamodule)
    logged_losses = [step for step, name in calls if name == "train/loss"]
    if monitor == "train/loss":  # logged in training_step, before the step counts: this step's loss at every step
        assert logged_losses == list(range(7)) and reader.seen == reader.returned
    else:  # logged in on_train_batch_end, after the step counts
        assert calls == [(3, "train/loss"), (3, "train/lr"), (6, "train/loss"), (6, "train/lr")]
        expected = [None, None, None, reader.returned[2], reader.returned[2], reader.returned[2], reader.returned[5]]
        assert reader.seen == expected  # callbacks run before the module's hook: they see the previous logging step
    assert trainer.callback_metrics["train/loss"].item() == reader.returned[5 if monitor != "train/loss" else 6]


def test_training_changes_the_weights_and_loss_is_finite(tiny_model_dir, datamodule, tmp_path):
    module = SimCSE(str(tiny_model_dir), pooler_type="avg", learning_rate=1.0e-3)
    before = {name: param.detach().clone() for name, param in module.named_parameters()}
    trainer = _trainer(tmp_path, max_steps=3, limit_val_batches=0, log_every_n_steps=1)
    trainer.fit(module, datamodule)
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    changed = [name for name, param in module.named_parameters() if not torch.equal(before[name], param)]
    assert any("encoder.backbone.encoder.layer.0" in name for name in changed)


def _dev_cosines(module: SimCSE, tokenizer, pairs) -> torch.Tensor:
    """Cosine of each dev pair, every sentence of a side encoded in one float32 batch outside any autocast, on the
    module's device; returned on the CPU."""
    module.eval()
    with torch.no_grad():
        first, second = (
            module(dict(tokenizer(side, padding=True, return_tensors="pt").to(module.device)))
            for side in (pairs.sentence1, pairs.sentence2)
        )
    return F.cosine_similarity(first, second).cpu()


def test_validation_spearman_and_pearson_match_scipy(tiny_model_dir, tiny_data, datamodule, tmp_path):
    module = SimCSE(str(tiny_model_dir), pooler_type="avg")
    metrics = _trainer(tmp_path).validate(module, datamodule, verbose=False)[0]
    pairs = read_scored_pairs(tiny_data.dev_file)
    cosine = _dev_cosines(module, datamodule.tokenizer, pairs).numpy()
    assert metrics["val/stsb_spearman"] == pytest.approx(spearmanr(cosine, pairs.scores).statistic, abs=1e-4)
    assert metrics["val/stsb_pearson"] == pytest.approx(pearsonr(cosine, pairs.scores).statistic, abs=1e-4)


@pytest.mark.parametrize(
    ("device", "precision"),
    [
        ("cpu", "bf16-mixed"),
        *(pytest.param("cuda", precision, marks=ON_CUDA) for precision in ("16-mixed", "bf16-mixed")),
    ],
)
def test_validation_encodes_in_float32_under_mixed_precision(
    tiny_model_dir, tiny_data, datamodule, tmp_path, monkeypatch, device, precision
):
    """Validation under a GPU run's mixed-precision plugin (on the CPU, bf16-mixed stands in for a GPU's 16-mixed):
    the dev pairs are still encoded in float32."""
    module = SimCSE(str(tiny_model_dir), pooler_type="avg")
    encoded = []  # (the encoder's inputs, its (2B, H) output) for each validation batch
    forward = module.encoder.forward
    monkeypatch.setattr(
        module.encoder, "forward", lambda **batch: encoded.append((batch, forward(**batch))) or encoded[-1][1]
    )
    if device == "cuda":
        trainer = _trainer(tmp_path, accelerator="gpu", devices=1, precision=precision)
    else:
        trainer = _trainer(tmp_path, precision=None, plugins=[MixedPrecision(precision, "cpu")])
    metrics = trainer.validate(module, datamodule, verbose=False)[0]
    module.to(device).eval()  # Lightning's teardown moved it to the CPU
    monkeypatch.setattr(module.encoder, "forward", forward)
    half = torch.float16 if precision == "16-mixed" else torch.bfloat16
    assert encoded
    with torch.no_grad():
        for inputs, embeddings in encoded:
            inputs = {name: value.to(device) if torch.is_tensor(value) else value for name, value in inputs.items()}
            assert embeddings.dtype == torch.float32
            exact = module.encoder(**inputs)
            with torch.autocast(device, dtype=half):  # what the plugin would have made of the dev pairs
                rounded = module.encoder(**inputs).float()
            assert torch.allclose(embeddings.to(device), exact, rtol=0, atol=1e-5)
            assert (rounded - exact).abs().max() > 1e-4  # the check above tells the two apart
    pairs = read_scored_pairs(tiny_data.dev_file)
    cosine = _dev_cosines(module, datamodule.tokenizer, pairs).numpy()
    assert metrics["val/stsb_pearson"] == pytest.approx(pearsonr(cosine, pairs.scores).statistic, abs=1e-6)


def test_training_step_encodes_each_sentence_twice_in_one_pass(tiny_model_dir, monkeypatch):
    module = SimCSE(str(tiny_model_dir), pooler_type="avg")
    seen = []
    forward = module.encoder.forward
    monkeypatch.setattr(module.encoder, "forward", lambda **batch: seen.append(batch["input_ids"]) or forward(**batch))
    without_trainer(module)
    ids = torch.tensor([[2, 10, 3], [2, 11, 3], [2, 12, 3]])
    batch = TrainingBatch(input_ids=ids[:, None], attention_mask=torch.ones_like(ids)[:, None])  # (B, 1, L)
    loss = module.training_step(batch, 0)
    assert len(seen) == 1 and seen[0].tolist() == [row for row in ids.tolist() for _ in range(2)]
    assert loss.ndim == 0 and loss.item() > 0


def _batch(tokenizer, texts: list[list[str]]) -> TrainingBatch:
    from cse.data.collate import ExampleCollator

    return ExampleCollator(tokenizer)(sentences.tokenized_rows(tokenizer, texts))


TRIPLETS = sentences.TRIPLETS[:3]


@pytest.mark.parametrize("weight", [0.0, 1.5])
def test_triplet_step_is_infonce_with_weighted_hard_negatives(tiny_model_dir, weight):
    from transformers import AutoTokenizer

    from cse.losses.info_nce import InfoNCELoss

    module = SimCSE(str(tiny_model_dir), pooler_type="avg", hard_negative_weight=weight).eval()  # eval: no dropout
    without_trainer(module)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    batch = _batch(tokenizer, TRIPLETS)
    loss = module.training_step(batch, 0)
    with torch.no_grad():
        columns = [
            module(dict(tokenizer([row[k] for row in TRIPLETS], padding=True, return_tensors="pt"))) for k in range(3)
        ]
    expected = InfoNCELoss(0.05, weight)(*columns)
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)


def test_hard_negative_alpha_is_the_weight_in_log_space(tiny_model_dir):
    import math

    from cse.errors import InputError

    assert SimCSE(str(tiny_model_dir), hard_negative_alpha=2.0).loss_fn.hard_negative_weight == pytest.approx(
        math.log(2.0)
    )
    with pytest.raises(InputError, match="either hard_negative_weight"):
        SimCSE(str(tiny_model_dir), hard_negative_weight=1.0, hard_negative_alpha=2.0)
    with pytest.raises(InputError, match="must be > 0"):
        SimCSE(str(tiny_model_dir), hard_negative_alpha=0.0)


@pytest.mark.parametrize("scored_loss", ["cosent", "cosine_mse"])
def test_scored_pairs_use_the_scored_loss(tiny_model_dir, scored_loss):
    from transformers import AutoTokenizer

    from cse.losses.cosent import CoSENTLoss
    from cse.losses.cosine_mse import CosineMSELoss

    module = SimCSE(str(tiny_model_dir), pooler_type="avg", scored_loss=scored_loss).eval()
    without_trainer(module)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    pairs = [row[:2] for row in TRIPLETS]
    batch = _batch(tokenizer, pairs) | {"score": torch.tensor([0.9, 0.5, 0.1])}
    loss = module.training_step(batch, 0)
    with torch.no_grad():
        first, second = (
            module(dict(tokenizer([row[k] for row in pairs], padding=True, return_tensors="pt"))) for k in range(2)
        )
    reference = CoSENTLoss(20.0) if scored_loss == "cosent" else CosineMSELoss()
    torch.testing.assert_close(loss, reference(first, second, batch["score"]), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("texts", [2, 1], ids=["pairs", "unsupervised"])
def test_mlm_auxiliary_loss_adds_weighted_masked_lm_cross_entropy(tiny_mlm_dir, texts):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    module = SimCSE(str(tiny_mlm_dir), pooler_type="avg", do_mlm=True, mlm_weight=0.1).eval()
    without_mlm = SimCSE(str(tiny_mlm_dir), pooler_type="avg").eval()
    for m in (module, without_mlm):
        without_trainer(m)
    tokenizer = AutoTokenizer.from_pretrained(tiny_mlm_dir)
    from cse.data.collate import ExampleCollator

    torch.manual_seed(0)
    batch = ExampleCollator(tokenizer, mlm_probability=0.5)(
        sentences.tokenized_rows(tokenizer, [views[:texts] for views in TRIPLETS])
    )
    contrastive = without_mlm.training_step({k: v for k, v in batch.items() if not k.startswith("mlm")}, 0)
    # Independent reference: transformers' own BertForMaskedLM loss on the masked inputs.
    reference = AutoModelForMaskedLM.from_pretrained(tiny_mlm_dir).eval()
    copies = 2 if texts == 1 else 1  # a single sentence is masked twice, once per training view
    with torch.no_grad():
        mlm = reference(
            input_ids=batch["mlm_input_ids"].flatten(0, 1),
            attention_mask=batch["attention_mask"].flatten(0, 1).repeat_interleave(copies, dim=0),
            labels=batch["mlm_labels"].flatten(0, 1),
        ).loss
    torch.testing.assert_close(module.training_step(batch, 0), contrastive + 0.1 * mlm, atol=1e-5, rtol=1e-5)


def test_mlm_decoder_is_an_untied_copy_of_the_pretrained_one(tiny_mlm_dir):
    """As SimCSE's BertForCL: `lm_head` holds a copy of the pretrained `cls.predictions`, trained on its own."""
    from transformers import AutoModelForMaskedLM

    module = SimCSE(str(tiny_mlm_dir), pooler_type="avg", do_mlm=True)
    pretrained = AutoModelForMaskedLM.from_pretrained(tiny_mlm_dir).cls.predictions.state_dict()
    head = module.mlm_head.predictions.state_dict()
    assert head.keys() == pretrained.keys()
    for name, tensor in pretrained.items():
        assert torch.equal(head[name], tensor), name
    decoder, embeddings = module.mlm_head.predictions.decoder.weight, module.encoder.backbone.get_input_embeddings()
    assert decoder.data_ptr() != embeddings.weight.data_ptr()
    # Gradients stay apart: the decoder's MLM gradient does not reach the embeddings, which get only the encoder's.
    hidden = torch.randn(2, 3, decoder.size(1))
    module.mlm_head(hidden).sum().backward()
    assert decoder.grad is not None and embeddings.weight.grad is None


def test_a_model_saved_in_bfloat16_trains_its_mlm_head_in_float32(tiny_bf16_mlm_dir, tiny_mlm_dir):
    from transformers import AutoModelForMaskedLM

    module = SimCSE(str(tiny_bf16_mlm_dir), pooler_type="avg", do_mlm=True)
    assert {parameter.dtype for parameter in module.parameters()} == {torch.float32}
    saved = AutoModelForMaskedLM.from_pretrained(tiny_bf16_mlm_dir).cls.predictions.state_dict()  # bfloat16
    for name, tensor in module.mlm_head.predictions.state_dict().items():
        assert torch.equal(tensor, saved[name].float()), name
    hidden = torch.randn(2, 3, module.encoder.backbone.config.hidden_size)
    assert module.mlm_head(hidden).dtype == torch.float32


def test_mlm_without_a_head_is_a_clear_error(tiny_model_dir):
    from cse.errors import InputError

    with pytest.raises(InputError, match="has no trained masked-LM head"):
        SimCSE(str(tiny_model_dir), do_mlm=True)


@pytest.fixture(scope="module")
def watched_module(tiny_model_dir):
    """A module that records its encoder's forward passes (the tests below refuse batches: nothing trains)."""
    module = without_trainer(SimCSE(str(tiny_model_dir), pooler_type="avg"))
    module.encoded = []
    module.encoder.register_forward_pre_hook(lambda _, args: module.encoded.append(True))
    return module


def _contract_batch(texts: int, **extra: torch.Tensor) -> TrainingBatch:
    ids = torch.tensor([[2, 10, 3], [2, 11, 3], [2, 12, 3]])[:, None].repeat(1, texts, 1)  # (B, L) -> (B, k, L)
    return TrainingBatch(input_ids=ids, attention_mask=torch.ones_like(ids), **extra)


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        (_contract_batch(4), r"input_ids has shape \(3, 4, 3\); a training batch holds \(B, k, L\)"),
        (_contract_batch(3, score=torch.zeros(3)), r"score is given with k = 3 texts per example"),
        (_contract_batch(1, score=torch.zeros(3)), r"score is given with k = 1 texts per example"),
        (_contract_batch(2, score=torch.zeros(2)), r"score has shape \(2,\), not \(3,\)"),
        (_contract_batch(2, scores=torch.zeros(3)), r"unknown keys scores"),
    ],
)
def test_a_batch_that_breaks_the_contract_is_refused_before_encoding(watched_module, batch, message):
    watched_module.encoded.clear()
    with pytest.raises(BatchError, match=message):
        watched_module.training_step(batch, 0)
    assert watched_module.encoded == []


def test_an_evaluation_batch_that_breaks_the_contract_is_refused_before_encoding(watched_module):
    watched_module.encoded.clear()
    with pytest.raises(BatchError, match=r"an evaluation batch holds \(2B, L\)"):
        watched_module.validation_step(_contract_batch(2, score=torch.zeros(3)), 0)  # a training batch
    assert watched_module.encoded == []


def test_mlm_needs_the_masked_copy_in_the_batch(tiny_mlm_dir):
    module = without_trainer(SimCSE(str(tiny_mlm_dir), pooler_type="avg", do_mlm=True))
    with pytest.raises(BatchError, match="model.do_mlm needs mlm_input_ids and mlm_labels"):
        module.training_step(_contract_batch(2), 0)


def test_candidates_are_gathered_only_under_a_trainer_of_several_processes(tiny_model_dir):
    """`_gathers` tells "no Trainer" by the public `trainer` property raising RuntimeError (Lightning's behaviour, kept
    here: if it changed, a module used on its own would crash or gather)."""
    module = SimCSE(str(tiny_model_dir))
    with pytest.raises(RuntimeError, match="not attached to a `Trainer`"):
        module.trainer  # noqa: B018
    assert not module._gathers()
    module.trainer = SimpleNamespace(world_size=1)
    assert not module._gathers()
    module.trainer = SimpleNamespace(world_size=2)
    assert module._gathers()
    module.hparams.gather_across_devices = False
    assert not module._gathers()


def test_candidates_are_gathered_in_float32_under_autocast(tiny_model_dir, monkeypatch):
    """Under DDP with 16-mixed, the encoder returns fp16 embeddings; they cross devices (and their gradients come
    back, summed over devices) in float32. One process stands in for the world here: its gather is the identity.
    The `cls` pooler's MLP is a Linear layer, so its output is half precision under autocast."""
    module = without_trainer(SimCSE(str(tiny_model_dir), pooler_type="cls"))
    gathered = []

    def all_gather(tensor, sync_grads=False):
        gathered.append((tensor.dtype, sync_grads))
        return tensor.unsqueeze(0)  # (B, k-1, H) -> (N=1, B, k-1, H)

    monkeypatch.setattr(module, "all_gather", all_gather)
    monkeypatch.setattr(module, "_gathers", lambda: True)
    from transformers import AutoTokenizer

    batch = _batch(AutoTokenizer.from_pretrained(tiny_model_dir), TRIPLETS)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = module.training_step(batch, 0)
    assert gathered == [(torch.float32, True)]
    assert loss.dtype == torch.float32
