import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch import Callback, Trainer
from scipy.stats import pearsonr, spearmanr

from cse.data.datamodule import SimCSEDataModule
from cse.data.scored_pairs import read_scored_pairs
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


def test_training_changes_the_weights_and_loss_is_finite(tiny_model_dir, datamodule, tmp_path):
    module = SimCSE(str(tiny_model_dir), pooler_type="avg", learning_rate=1.0e-3)
    before = {name: param.detach().clone() for name, param in module.named_parameters()}
    trainer = _trainer(tmp_path, max_steps=3, limit_val_batches=0)
    trainer.fit(module, datamodule)
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    changed = [name for name, param in module.named_parameters() if not torch.equal(before[name], param)]
    assert any("encoder.backbone.encoder.layer.0" in name for name in changed)


def test_validation_spearman_and_pearson_match_scipy(tiny_model_dir, tiny_data, datamodule, tmp_path):
    module = SimCSE(str(tiny_model_dir), pooler_type="avg")
    metrics = _trainer(tmp_path).validate(module, datamodule, verbose=False)[0]
    pairs = read_scored_pairs(tiny_data.dev_file)
    module.eval()
    tokenizer = datamodule.tokenizer
    with torch.no_grad():
        first = module(dict(tokenizer(pairs.sentence1, padding=True, return_tensors="pt")))
        second = module(dict(tokenizer(pairs.sentence2, padding=True, return_tensors="pt")))
    cosine = F.cosine_similarity(first, second).numpy()
    assert metrics["val/stsb_spearman"] == pytest.approx(spearmanr(cosine, pairs.scores).statistic, abs=1e-4)
    assert metrics["val/stsb_pearson"] == pytest.approx(pearsonr(cosine, pairs.scores).statistic, abs=1e-4)


def test_training_step_encodes_each_sentence_twice_in_one_pass(tiny_model_dir, monkeypatch):
    module = SimCSE(str(tiny_model_dir), pooler_type="avg")
    seen = []
    forward = module.encoder.forward
    monkeypatch.setattr(module.encoder, "forward", lambda **batch: seen.append(batch["input_ids"]) or forward(**batch))
    monkeypatch.setattr(module, "log", lambda *args, **kwargs: None)
    monkeypatch.setattr(
        module,
        "lr_schedulers",
        lambda: torch.optim.lr_scheduler.LambdaLR(torch.optim.SGD([torch.zeros(1, requires_grad=True)]), lambda _: 1.0),
    )
    ids = torch.tensor([[2, 10, 3], [2, 11, 3], [2, 12, 3]])
    loss = module.training_step({"input_ids": ids, "attention_mask": torch.ones_like(ids)}, 0)
    assert len(seen) == 1 and seen[0].tolist() == [row for row in ids.tolist() for _ in range(2)]
    assert loss.ndim == 0 and loss.item() > 0
