"""The LightningModule that trains a `SentenceEncoder` with SimCSE's contrastive objective (Gao et al., 2021)."""

import warnings

import torch.nn.functional as F
from lightning.pytorch import LightningModule
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor
from torchmetrics.regression import PearsonCorrCoef, SpearmanCorrCoef

from cse.losses.info_nce import InfoNCELoss
from cse.models.checkpoint_assets import BACKBONE_ASSETS_KEY, backbone_assets
from cse.models.encoder import SentenceEncoder
from cse.models.optimization import build_optimizer
from cse.models.poolers import PoolerType

TOKEN_KEYS = ("input_ids", "attention_mask", "token_type_ids")


class SimCSE(LightningModule):
    """Unsupervised SimCSE: each sentence is encoded twice in one forward pass, so its two embeddings differ
    only by dropout noise, and InfoNCE pulls them together against the rest of the batch (§3).

    Args:
        model_name_or_path: a local Hugging Face model directory or a hub id (any `AutoModel` encoder).
        pooler_type: `cls` (with MLP), `cls_before_pooler`, `avg`, `avg_top2` or `avg_first_last`.
        mlp_only_train: use the MLP over [CLS] in training only (the paper's unsupervised setting).
        temp: softmax temperature τ; 0.05 in SimCSE (Table D.1).
        learning_rate: peak AdamW learning rate; 3e-5 for unsupervised BERT-base (Table D.1).
        weight_decay: AdamW weight decay on weights (never on biases and LayerNorm); 0 in SimCSE.
        warmup_steps: linear warmup steps before the linear decay to 0; 0 in SimCSE.
        hard_negative_weight: log-space weight added to each anchor's own hard negative (supervised data).
    """

    def __init__(
        self,
        model_name_or_path: str,
        pooler_type: PoolerType = "cls",
        mlp_only_train: bool = False,
        temp: float = 0.05,
        learning_rate: float = 3.0e-5,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        hard_negative_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        # from_pretrained returns eval mode and Lightning >= 2.2 keeps module modes: the encoder comes in train mode.
        self.encoder = SentenceEncoder.from_pretrained(model_name_or_path, pooler_type, mlp_only_train)
        self.loss_fn = InfoNCELoss(temperature=temp, hard_negative_weight=hard_negative_weight)
        with warnings.catch_warnings():  # it warns that it buffers every score: a dev set is small
            warnings.simplefilter("ignore", UserWarning)
            self.eval_spearman = SpearmanCorrCoef()
        self.eval_pearson = PearsonCorrCoef()

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Embeddings (B, H) of a tokenized batch with (B, L) tensors."""
        return self.encoder(**{key: batch[key] for key in TOKEN_KEYS if key in batch})

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        # (B, L) -> (2B, L): rows 2i and 2i+1 are the same sentence, in one forward pass, as SimCSE's cl_forward.
        doubled = {key: batch[key].repeat_interleave(2, dim=0) for key in TOKEN_KEYS if key in batch}
        embeddings = self.encoder(**doubled)  # (2B, H)
        views = embeddings.view(-1, 2, embeddings.size(-1))  # (2B, H) -> (B, 2, H)
        loss = self.loss_fn(views[:, 0], views[:, 1])
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/lr", self.lr_schedulers().get_last_lr()[0])
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._update_correlations(batch)

    def on_validation_epoch_end(self) -> None:
        self._log_correlations("val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._update_correlations(batch)

    def on_test_epoch_end(self) -> None:
        self._log_correlations("test")

    def configure_optimizers(self) -> dict:
        optimizer, scheduler = build_optimizer(
            self,
            learning_rate=self.hparams.learning_rate,
            weight_decay=self.hparams.weight_decay,
            warmup_steps=self.hparams.warmup_steps,
            total_steps=int(self.trainer.estimated_stepping_batches),
        )
        # SimCSE's linear decay is per optimizer step, not Lightning's default per epoch.
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Store the backbone config and tokenizer files so the checkpoint loads without the base model."""
        checkpoint[BACKBONE_ASSETS_KEY] = backbone_assets(self.encoder.backbone.config, self.hparams.model_name_or_path)

    def _update_correlations(self, batch: dict[str, Tensor]) -> None:
        """Cosine similarity of each scored pair; the batch holds sentence1 in rows [0, B), sentence2 in [B, 2B)."""
        first, second = self(batch).float().chunk(2)  # (2B, H) -> 2 × (B, H)
        cosine = F.cosine_similarity(first, second, dim=-1)  # (B,)
        self.eval_spearman.update(cosine, batch["score"])
        self.eval_pearson.update(cosine, batch["score"])

    def _log_correlations(self, split: str) -> None:
        spearman, pearson = self.eval_spearman.compute(), self.eval_pearson.compute()
        self.eval_spearman.reset()
        self.eval_pearson.reset()
        self.log(f"{split}/stsb_spearman", spearman, prog_bar=True)
        self.log(f"{split}/stsb_pearson", pearson)
        when = "before training" if self.trainer.sanity_checking else f"at step {self.global_step}"
        rank_zero_info(f"{split} {when}: STS Spearman {100 * spearman:.2f}, Pearson {100 * pearson:.2f}")
