"""The LightningModule that trains a `SentenceEncoder` with SimCSE's contrastive objective (Gao et al., 2021)."""

import inspect
import warnings
from typing import Any, Literal

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor
from torchmetrics.regression import PearsonCorrCoef, SpearmanCorrCoef

from cse.callbacks.lightning_overhead import PlainHookName
from cse.errors import InputError
from cse.every_process_error import raise_in_every_process
from cse.losses.cosent import CoSENTLoss
from cse.losses.cosine import paired_cosine
from cse.losses.cosine_mse import CosineMSELoss
from cse.losses.info_nce import InfoNCELoss
from cse.losses.matryoshka import MatryoshkaLoss
from cse.models.batch import (
    UNSUPERVISED_VIEWS,
    BatchError,
    EvaluationBatch,
    Mode,
    TrainingBatch,
    batch_mode,
    check_evaluation_batch,
    token_tensors,
)
from cse.models.checkpoint_assets import BACKBONE_ASSETS_KEY, backbone_assets
from cse.models.compile_settings import check_compile_settings
from cse.models.encoder import SentenceEncoder
from cse.models.grad_cache import checkpointed_rows, chunked_checkpoint
from cse.models.gradient_clipping import clip_gradients
from cse.models.hyperparameters import check_hyperparameters, hard_negative_logit_weight
from cse.models.matryoshka import (
    check_matryoshka_hidden_size,
    check_matryoshka_settings,
    spearman_by_dimension_name,
    validated_dimensions,
)
from cse.models.method_combinations import check_method_combinations, check_method_switches, check_word_repetition
from cse.models.mlm_head import load_mlm_head
from cse.models.mode_settings import check_settings_for_mode, has_dropout
from cse.models.momentum_queue import MomentumQueue, check_momentum_mode, check_momentum_settings
from cse.models.optimization import Schedule, build_optimizer, check_schedule
from cse.models.poolers import PoolerType, uses_mlp
from cse.models.prompt_template import prompt_settings
from cse.models.simcsepp import SimCSEPlusPlusLoss, check_simcsepp_mode, check_simcsepp_settings
from cse.models.tsdae import Objective, TSDAEDecoder, check_tsdae_settings, tsdae_loss

CompileMode = Literal["default", "reduce-overhead", "max-autotune"]


class SimCSE(PlainHookName, LightningModule):
    """SimCSE training of a `SentenceEncoder`; the batch's columns choose the objective, as SimCSE's `cl_forward`.

    - sentences alone (unsupervised, §3): each is encoded twice in one forward pass, so its two embeddings differ
      only by dropout noise, and InfoNCE pulls them together against the rest of the batch;
    - (anchor, positive) pairs and (anchor, positive, hard negative) triplets (supervised, §4): InfoNCE with
      in-batch negatives, plus each anchor's hard negative weighted by `hard_negative_weight`;
    - scored pairs: CoSENT (default) or cosine-MSE on the cosine of each pair.

    With `matryoshka_dims`, each objective is summed over nested prefixes of the embedding (Matryoshka representation
    learning, Kusupati et al., 2022), so that its first d coordinates embed on their own.

    Args:
        model_name_or_path: a local Hugging Face model directory or a hub id (any `AutoModel` encoder).
        pooler_type: `cls` (with MLP), `cls_before_pooler`, `avg`, `avg_top2`, `avg_first_last` or `prompt`
            (PromptBERT, Jiang et al., 2022: the [MASK] state of `prompt_template`, `cse.models.prompt_pooler`).
        mlp_only_train: use the MLP over [CLS] in training only (the paper's unsupervised setting); with `prompt`, an
            MLP over the (denoised) [MASK] state in training only, as PromptBERT's unsupervised runs.
        temp: softmax temperature τ; 0.05 in SimCSE (Table D.1).
        learning_rate: peak AdamW learning rate; 3e-5 for unsupervised BERT-base (Table D.1).
        weight_decay: AdamW weight decay on weights (never on biases and LayerNorm); 0 in SimCSE.
        warmup_steps: linear warmup steps before `lr_schedule`; 0 in SimCSE.
        lr_schedule: after the warmup, `linear` decays the learning rate to 0 at the last step (SimCSE's, HF
            Trainer's); `constant` keeps it (sentence-transformers' `constantlr`, TSDAE's reference run).
        hard_negative_weight: added to the logit of each anchor's own hard negative, i.e. in log space: its
            softmax weight is multiplied by exp(hard_negative_weight). 0 (the paper's default) treats it as any other
            negative; a large negative value removes it. Not a probability or a mixing weight.
        hard_negative_alpha: the same weight given as α > 0, the multiplier of the hard negative's softmax weight
            (SimCSE Appendix B, Eq. 6); sets hard_negative_weight = ln α. 1 is the default, no reweighting.
        scored_loss: objective for scored pairs: `cosent` (order of scores only) or `cosine_mse` (cosine regressed
            onto the score, so scores must be in [0, 1] or [-1, 1]; see `data.score_range`).
        cosent_scale: λ of CoSENT; 20 as in CoSENT and sentence-transformers.
        do_mlm: add SimCSE's auxiliary masked-LM loss (§B) with the checkpoint's own MLM head.
        mlm_weight: λ of the MLM term, loss = contrastive + λ · MLM; 0.1 in SimCSE.
        mlm_probability: share of tokens masked (80% [MASK], 10% random, 10% kept); 0.15 as BERT.
        gather_across_devices: under DDP, score each device's anchors against the positives and hard negatives of
            every device, so N devices × B examples train as one batch of N·B (SimCSE's 4 GPUs × 128 = 512);
            false keeps B - 1 in-batch negatives per device. Scored-pair losses never gather (see `_loss`). TSDAE
            averages its cross-entropy over the tokens of every device, or with false over each device's own.
        mini_batch_size: encode the batch in chunks of this many examples (GradCache, Gao et al., 2021, see
            `cse.models.grad_cache`): activation memory of one chunk, the loss and gradients of the whole batch,
            one extra forward pass. None encodes the whole batch at once.
        compile: `torch.compile` the encoder's training forward pass: true (mode "default") or a mode,
            "reduce-overhead" (CUDA graphs: no kernel-launch cost per step) or "max-autotune". Shapes are static
            (`dynamic=False`): the CLI pads every training batch to `data.max_seq_length`, so one graph serves the
            whole run. Validation stays eager, in float32, whatever its sentence lengths. The CUDA-graph modes are
            refused with `mini_batch_size` (`cse.models.compile_settings`).
        matryoshka_dims: train the first d coordinates of the embedding as an embedding, for each d (Matryoshka
            representation learning, `cse.losses.matryoshka`): the objective (InfoNCE or the scored-pair loss) is
            summed over these prefixes. Strictly decreasing, at most the hidden size, which should come first, e.g.
            [768, 512, 256, 128, 64] (sentence-transformers' example). Each smaller d is validated apart as
            `val/stsb_spearman_dim{d}`. None: off, the full embedding only.
        matryoshka_weights: the weight of each dimension's loss, > 0, one per dimension; None weighs each 1 (the
            paper's c_m = 1).
        off_dropout_negatives: SimCSE++ (Xu et al., 2023, `cse.models.simcsepp`): score each sentence's dropout
            positive pair against the other sentences encoded with dropout off (one more forward pass, with
            gradient) instead of their dropout views. Unsupervised data only.
        dimension_contrast_weight: SimCSE++'s dimension-wise contrastive term (DCL) is added with this weight λ;
            0.1 in SimCSE++, 0 leaves it out. Unsupervised data only.
        dimension_contrast_temp: DCL's temperature; None: 5, SimCSE++'s (the reference's `sw_temp`).
        prompt_template: `prompt` only: the template of the anchor view and of inference, one `[X]` (the sentence)
            and one `[MASK]`, e.g. `This sentence of "[X]" means [MASK] .` (PromptBERT's BERT template).
        prompt_template_positive: `prompt` only: the template of the positive (and hard negative) view in training;
            None: `prompt_template`. PromptBERT's unsupervised runs use two different templates.
        template_denoising: `prompt` only: subtract the template's own [MASK] state (the template with an empty
            sentence, at the same positions) in training (PromptBERT §5), and in the validation inside `fit`, as the
            reference's trainer evaluation that picks its checkpoint.
        template_denoising_at_inference: `prompt` only: subtract it at inference too (the reference's supervised
            runs do; its unsupervised runs do not).
        momentum_queue_size: ESimCSE's momentum contrast (Wu et al., 2022, §3.2; `cse.models.momentum_queue`): the
            embeddings of the last this many sentences, encoded without dropout by a momentum backbone (freshly
            initialized, as the reference's, then an EMA of the trained one), are extra negatives of InfoNCE; 160 for
            BERT-base at batch 64 (ESimCSE's run.sh). Single sentences only. 0: off.
        momentum: m of the momentum backbone, θ_m ← m · θ_m + (1 - m) · θ, in [0, 1); 0.995 in ESimCSE.
        objective: `contrastive` (SimCSE, above) or `tsdae`: rebuild each sentence from the embedding of a copy with
            words deleted, by a decoder tied to the encoder (TSDAE, Wang et al., 2021; `cse.models.tsdae`); single
            sentences only, with `cls_before_pooler` (TSDAE's [CLS]) or a mean pooler.
        tsdae_deletion_ratio: TSDAE's share of words deleted from each sentence, in [0, 1); 0.6 in TSDAE.
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
        lr_schedule: Schedule = "linear",
        hard_negative_weight: float = 0.0,
        hard_negative_alpha: float | None = None,
        scored_loss: Literal["cosent", "cosine_mse"] = "cosent",
        cosent_scale: float = 20.0,
        do_mlm: bool = False,
        mlm_weight: float = 0.1,
        mlm_probability: float = 0.15,
        gather_across_devices: bool = True,
        mini_batch_size: int | None = None,
        compile: bool | CompileMode = False,
        matryoshka_dims: list[int] | None = None,
        matryoshka_weights: list[float] | None = None,
        off_dropout_negatives: bool = False,
        dimension_contrast_weight: float = 0.0,
        dimension_contrast_temp: float | None = None,
        prompt_template: str | None = None,
        prompt_template_positive: str | None = None,
        template_denoising: bool = False,
        template_denoising_at_inference: bool = False,
        momentum_queue_size: int = 0,
        momentum: float = 0.995,
        objective: Objective = "contrastive",
        tsdae_deletion_ratio: float = 0.6,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_hyperparameters(self.hparams)
        check_schedule(lr_schedule)
        mlp_training_only = uses_mlp(pooler_type, mlp_only_train, True) != uses_mlp(pooler_type, mlp_only_train, False)
        check_matryoshka_settings(matryoshka_dims, matryoshka_weights, mlp_training_only)
        check_simcsepp_settings(
            off_dropout_negatives, dimension_contrast_weight, dimension_contrast_temp, matryoshka_dims
        )
        check_momentum_settings(momentum_queue_size, momentum, do_mlm)
        check_method_combinations(self.hparams)
        check_method_switches(self.hparams, _signature_defaults())
        check_compile_settings(compile, mini_batch_size)
        check_tsdae_settings(self.hparams)
        # from_pretrained returns eval mode and Lightning >= 2.2 keeps module modes: the encoder comes in train mode.
        prompt = prompt_settings(
            pooler_type, prompt_template, prompt_template_positive, template_denoising, template_denoising_at_inference
        )
        self.encoder = SentenceEncoder.from_pretrained(model_name_or_path, pooler_type, mlp_only_train, prompt)
        self.loaded_checkpoint_step: int | None = None  # set by `on_load_checkpoint`
        hidden_size = self.encoder.backbone.config.hidden_size
        warning = check_matryoshka_hidden_size(matryoshka_dims, hidden_size, model_name_or_path)
        if warning is not None:
            rank_zero_info(f"warning: {warning}")
        self.loss_fn = InfoNCELoss(temp, hard_negative_logit_weight(hard_negative_weight, hard_negative_alpha))
        self.scored_loss_fn = CoSENTLoss(cosent_scale) if scored_loss == "cosent" else CosineMSELoss()
        if matryoshka_dims is not None:  # the same objectives on every prefix (their positional arguments, truncated)
            self.loss_fn = MatryoshkaLoss(self.loss_fn, matryoshka_dims, matryoshka_weights)
            self.scored_loss_fn = MatryoshkaLoss(self.scored_loss_fn, matryoshka_dims, matryoshka_weights)
        self.simcsepp_loss = None
        if off_dropout_negatives or dimension_contrast_weight > 0:
            self.simcsepp_loss = SimCSEPlusPlusLoss(
                self.loss_fn, temp, off_dropout_negatives, dimension_contrast_weight, dimension_contrast_temp
            )
        self.mlm_head = load_mlm_head(model_name_or_path).train() if do_mlm else None
        # ESimCSE's momentum backbone and queue: in checkpoints, never trained by the optimizer nor exported.
        self.momentum_queue = (
            MomentumQueue(self.encoder, momentum_queue_size, momentum) if momentum_queue_size else None
        )
        tsdae = objective == "tsdae"  # the decoder shares the encoder's weights
        self.tsdae_decoder = TSDAEDecoder.tied_to(self.encoder.backbone, model_name_or_path) if tsdae else None
        # A compiled function, not a module: the encoder's parameters keep their names (checkpoints, export).
        mode = None if compile is True else compile
        # Set by `on_train_start`; before it (a `training_step` called by hand) every loss is logged at once.
        self._monitored_losses: set[str | None] = {"train/loss", "train/mlm_loss"}
        self._step_losses: dict[str, Tensor] = {}
        self._compiled_forward = torch.compile(self.encoder.forward, mode=mode, dynamic=False) if compile else None
        with warnings.catch_warnings():  # it warns that it buffers every score: a dev set is small
            warnings.simplefilter("ignore", UserWarning)
            self.eval_spearman = SpearmanCorrCoef()
            # Matryoshka: the Spearman of each truncated embedding, by dimension (the full one is eval_spearman's).
            self.eval_spearman_by_dimension = torch.nn.ModuleDict(
                {str(d): SpearmanCorrCoef() for d in validated_dimensions(matryoshka_dims, hidden_size)}
            )
        self.eval_pearson = PearsonCorrCoef()

    def setup(self, stage: str) -> None:
        """Before fitting, with the training data read: refuse or warn about settings its mode makes useless."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if stage != "fit" or getattr(datamodule, "mode", None) is None:
            return
        error = None
        try:
            self._check_training_data(datamodule)
        except InputError as found:
            error = found
        raise_in_every_process(error, self.trainer)  # under DDP: one line, and no process left waiting

    def _check_training_data(self, datamodule: Any) -> None:
        """Refuse (`InputError`) or warn about the settings that the data module's mode makes useless."""
        check_momentum_mode(self.hparams.momentum_queue_size, datamodule.mode, getattr(datamodule, "mixed", False))
        check_word_repetition(self.hparams, getattr(datamodule, "word_repetition_rate", None))
        if self.tsdae_decoder is not None:
            return  # TSDAE: the data module refuses all but single sentences
        defaults = _signature_defaults()
        processes = self.trainer.world_size if self._gathers() else 1
        dropout = has_dropout(self.encoder.backbone)
        accumulate = self.trainer.accumulate_grad_batches
        for warning in check_settings_for_mode(
            self.hparams, defaults, datamodule.mode, datamodule.batch_size, processes, dropout, accumulate
        ):
            rank_zero_info(f"warning: {warning}")
        check_simcsepp_mode(self.hparams, datamodule.mode)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Embeddings (B, H) of a tokenized batch with (B, L) tensors."""
        return self.encoder(**token_tensors(batch))

    def training_step(self, batch: TrainingBatch, batch_idx: int) -> Tensor:
        """The loss of a `TrainingBatch` (see `cse.models.batch`), whose shapes choose the objective."""
        mode = batch_mode(batch)  # shapes only: no host-device synchronization
        if self.tsdae_decoder is not None:  # TSDAE: each sentence rebuilt from its damaged copy's embedding
            gather = self.all_gather if self._gathers() else None  # the token mean of the N·B sentences
            ratio, chunk = self.hparams.tsdae_deletion_ratio, self.hparams.mini_batch_size
            loss = tsdae_loss(self.encoder, self.tsdae_decoder, batch, ratio, chunk, gather)
            self._log_losses({"train/loss": loss})
            return loss
        if self.mlm_head is not None and "mlm_input_ids" not in batch:
            raise BatchError("model.do_mlm needs mlm_input_ids and mlm_labels in the batch (data.mlm_probability)")
        tokens = token_tensors(batch)  # each (B, k, L), k = 1, 2 or 3
        queued = None  # ESimCSE: the momentum queue's embeddings, extra negatives of this step
        if self.momentum_queue is not None:
            queued = self.momentum_queue.start_step(self.encoder, self.current_epoch)
        if mode == "unsupervised":  # the sentence twice, views differ by dropout only
            tokens = {key: value.repeat(1, UNSUPERVISED_VIEWS, 1) for key, value in tokens.items()}  # -> (B, 2, L)
        size, views, length = tokens["input_ids"].shape
        # (B, k, L) -> (Bk, L): all views in ONE forward pass, rows [k·i, k·i + k) from example i, as SimCSE
        # (or one pass per chunk of mini_batch_size examples, all their views together).
        flat = {key: value.reshape(size * views, length) for key, value in tokens.items()}
        if self.encoder.prompt is not None:  # PromptBERT: the anchor's template for view 0, the positive's for others
            flat["template"] = self.encoder.prompt.view_templates(size, views)  # (Bk,)
        encode = self._compiled_forward or self.encoder
        embeddings = checkpointed_rows(encode, flat, self._chunk_rows(views))  # (Bk, H)
        loss = self._loss(embeddings.view(size, views, -1), batch, mode, queued)  # (Bk, H) -> (B, k, H)
        if self.momentum_queue is not None:
            self._enqueue({key: value[:, 0] for key, value in tokens.items()})  # (B, k, L) -> (B, L): the sentence
        losses = {}
        if self.mlm_head is not None:
            losses["train/mlm_loss"] = mlm_loss = self._mlm_loss(batch, flat["attention_mask"])
            loss = loss + self.hparams.mlm_weight * mlm_loss
        self._log_losses({"train/loss": loss, **losses})
        return loss

    def _log_losses(self, losses: dict[str, Tensor]) -> None:
        """Logs the step's losses now if a callback monitors one (`ModelCheckpoint`, `EarlyStopping`: they may read it
        in their `on_train_batch_end`, before this module's), else keeps them for `on_train_batch_end`, which logs them
        at the steps whose logs Lightning writes only.

        Each `self.log` costs 0.5 ms of host time on a 2-core CPU (Lightning deep-copies the metric's metadata at every
        call), time that a GPU step bound by kernel launches pays. Not on the progress bar: Lightning turns
        progress-bar values into Python numbers after every step, a host-device synchronization that would stall the
        GPU queue; logged tensors are only read at log time.
        """
        if self._monitored_losses.isdisjoint(losses):
            self._step_losses = {name: value.detach() for name, value in losses.items()}
            return
        for name, value in losses.items():
            self.log(name, value)

    def on_fit_start(self) -> None:
        if self.momentum_queue is not None:
            self.momentum_queue.expect_eval_mode()  # before Lightning's fit loop counts the modules in eval mode

    def on_train_start(self) -> None:
        self._monitored_losses = {getattr(callback, "monitor", None) for callback in self.trainer.callbacks}
        self._step_losses = {}

    def on_train_batch_start(self, batch: TrainingBatch, batch_idx: int) -> None:
        self._step_rate = self.lr_schedulers().get_last_lr()[0]  # this step's: the scheduler steps before batch end

    def on_train_batch_end(self, outputs: Tensor | dict, batch: TrainingBatch, batch_idx: int) -> None:
        """Logs `train/lr` and the losses kept by `training_step` at the steps whose logs Lightning writes, and only
        there (as its `LearningRateMonitor`): read nowhere else, they would cost host time at every step (see
        `_log_losses`). A callback reading `trainer.callback_metrics` between those steps sees the last ones logged,
        unless it monitors the loss (then logged at every step). This hook runs after every callback's, so it sees a
        stop asked for at this step, which Lightning logs too. The rate is a filled device tensor: `self.log` of a
        Python number copies it to the device with `torch.tensor`, a copy that waits for the GPU.
        """
        if self.trainer._logger_connector.should_update_logs or self.trainer.fast_dev_run:
            for name, value in self._step_losses.items():
                self.log(name, value)
            self.log("train/lr", torch.full((), self._step_rate, device=self.device))

    def validation_step(self, batch: EvaluationBatch, batch_idx: int) -> None:
        self._update_correlations(batch)

    def on_validation_epoch_end(self) -> None:
        self._log_correlations("val")

    def test_step(self, batch: EvaluationBatch, batch_idx: int) -> None:
        self._update_correlations(batch)

    def on_test_epoch_end(self) -> None:
        self._log_correlations("test")

    def configure_optimizers(self) -> dict:
        total_steps = int(self.trainer.estimated_stepping_batches)
        optimizer, scheduler = build_optimizer(
            self,
            learning_rate=self.hparams.learning_rate,
            weight_decay=self.hparams.weight_decay,
            warmup_steps=self.hparams.warmup_steps,
            total_steps=total_steps,
            schedule=self.hparams.lr_schedule,
        )
        if self.hparams.warmup_steps >= total_steps > 0:
            rank_zero_info(
                f"warning: model.warmup_steps: {self.hparams.warmup_steps} is not below the run's {total_steps} steps, "
                "so the learning rate never reaches model.learning_rate"
            )
        # SimCSE's linear decay (and any warmup) is per optimizer step, not Lightning's default per epoch.
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Lightning's clipping, also for the fused AdamW under mixed precision (see `cse.models.gradient_clipping`)."""
        clip_gradients(self, optimizer, gradient_clip_val, gradient_clip_algorithm)

    def _loss(self, embeddings: Tensor, batch: TrainingBatch, mode: Mode, queued: Tensor | None = None) -> Tensor:
        """The objective on (B, k, H) embeddings, view 0 the anchor (or first sentence), 1 the positive, 2 the negative;
        `queued` (Q, H) are ESimCSE's momentum-queue negatives, scored after the (gathered) positives.

        Scored-pair losses stay per device, as sentence-transformers' CoSENT under DDP: cosine-MSE is a mean over
        pairs (equal batches on every device make the DDP average the global mean) and CoSENT ranks the pairs of
        a batch against each other, which gains no negatives from other devices.
        """
        if mode == "scored":
            return self.scored_loss_fn(embeddings[:, 0], embeddings[:, 1], score=batch["score"])
        if self.simcsepp_loss is not None:  # SimCSE++: off-dropout negatives and/or DCL (`cse.models.simcsepp`)
            gather = self.all_gather if self._gathers() else None
            tokens = token_tensors(batch)  # (B, 1, L): encoded again without dropout
            return self.simcsepp_loss(embeddings, tokens, self.encoder, self._chunk_rows(1), gather, self.global_rank)
        anchor, candidates, offset = embeddings[:, 0], embeddings[:, 1:], 0  # (B, H), (B, k - 1, H)
        if self._gathers():
            # Gradients flow back to the device that encoded each row: summed over devices by the gather's backward,
            # then averaged by DDP, so the gradient is that of the mean loss over all N·B anchors.
            # At least float32: the similarities are float32 anyway, the gather's backward then sums the devices'
            # gradients in float32 rather than fp16, and every backend takes the dtype (gloo has no bfloat16 reduce).
            candidates = candidates.to(torch.promote_types(candidates.dtype, torch.float32))
            candidates = self.all_gather(candidates, sync_grads=True).flatten(0, 1)  # (N, B, k-1, H) -> (NB, k-1, H)
            offset = self.global_rank * anchor.size(0)  # this device's anchors are rows [rank·B, rank·B + B)
        negative = candidates[:, 1] if mode == "triplets" else None
        positive = candidates[:, 0]
        if queued is not None:  # extra columns of the logits, never a label: (N, H) -> (N + Q, H)
            positive = torch.cat([positive, queued.to(positive.dtype)])
        return self.loss_fn(anchor, positive, negative, offset=offset)

    def _gathers(self) -> bool:
        """Whether InfoNCE takes candidates from every device: DDP with more than one process, unless turned off."""
        if not self.hparams.gather_across_devices:
            return False
        try:
            trainer = self.trainer
        except RuntimeError:  # Lightning's public way of saying "not attached to a Trainer": one process
            return False
        return trainer.world_size > 1

    def _enqueue(self, sentences: dict[str, Tensor]) -> None:
        """ESimCSE: enqueue the momentum embeddings of (B, L) sentences, those of every process in rank order."""
        embeddings = self.momentum_queue.encode(self.encoder, sentences, self.hparams.mini_batch_size)  # (B, H)
        if self._processes() > 1:  # every process holds the same queue (the checkpoint keeps rank 0's)
            embeddings = self.all_gather(embeddings).flatten(0, 1)  # (N, B, H) -> (NB, H)
        self.momentum_queue.enqueue(embeddings)

    def _processes(self) -> int:
        """Training processes: the trainer's world size, 1 without a trainer."""
        try:
            return self.trainer.world_size
        except RuntimeError:  # not attached to a Trainer
            return 1

    def _chunk_rows(self, views: int) -> int | None:
        """Rows of the flattened (Bk, L) batch per GradCache chunk: mini_batch_size examples with all their views."""
        return None if self.hparams.mini_batch_size is None else self.hparams.mini_batch_size * views

    def _mlm_loss(self, batch: TrainingBatch, attention_mask: Tensor) -> Tensor:
        """Cross-entropy of the masked tokens of every view (the collator masks them), as SimCSE's cl_forward.

        `attention_mask` (Bk', L) is that of the views the encoder sees: an unsupervised sentence's, twice.
        """
        masked = batch["mlm_input_ids"].flatten(0, 1)  # (B, k', L) -> (Bk', L)
        labels = batch["mlm_labels"].flatten(0, 1)  # (B, k', L) -> (Bk', L)
        inputs = {"input_ids": masked, "attention_mask": attention_mask, "labels": labels}
        views = batch["mlm_labels"].size(1)
        # Summed over chunks then divided by the masked-token count: the mean over the whole batch.
        total = sum(chunked_checkpoint(self._mlm_loss_sum, inputs, self._chunk_rows(views)))
        return total / (labels != -100).sum()

    def _mlm_loss_sum(self, input_ids: Tensor, attention_mask: Tensor, labels: Tensor) -> Tensor:
        """Summed cross-entropy of the masked tokens in (b, L) rows; -100 labels are not masked."""
        hidden = self.encoder.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        logits = self.mlm_head(hidden)  # (b, L, H) -> (b, L, V)
        return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100, reduction="sum")

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Keep the checkpoint's optimizer step, which `cse validate|test` name in their lines."""
        self.loaded_checkpoint_step = checkpoint.get("global_step")

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Store the backbone config and tokenizer files so the checkpoint loads without the base model."""
        checkpoint[BACKBONE_ASSETS_KEY] = backbone_assets(self.encoder.backbone.config, self.hparams.model_name_or_path)

    def _update_correlations(self, batch: EvaluationBatch) -> None:
        """Cosine similarity of each scored pair; the batch holds sentence1 in rows [0, B), sentence2 in [B, 2B).

        Encoded in float32 outside autocast, as SimCSE evaluates (its trainer calls SentEval without autocast), so the
        choice of the best checkpoint does not depend on fp16 rounding. PromptBERT trained with template denoising is
        validated denoised during `fit`, as the reference's dev evaluation (`sentemb_forward`) that picks its
        checkpoint; `cse validate|test` and the export embed as its test (`evaluation.py` without the delta) does.
        """
        check_evaluation_batch(batch)
        denoise = self.hparams.template_denoising and self.trainer.state.fn == TrainerFn.FITTING
        with torch.autocast(self.device.type, enabled=False):
            first, second = self.encoder(**token_tensors(batch), denoise=denoise).chunk(2)  # (2B, H) -> 2 × (B, H)
        cosine = paired_cosine(first, second)  # (B,), float32
        self.eval_spearman.update(cosine, batch["score"])
        self.eval_pearson.update(cosine, batch["score"])
        for dimension, spearman in self.eval_spearman_by_dimension.items():  # Matryoshka: each truncation
            prefix = int(dimension)
            spearman.update(paired_cosine(first[:, :prefix], second[:, :prefix]), batch["score"])

    def _log_correlations(self, split: str) -> None:
        # compute() gathers every device's scores (and caches the result); logging the metric objects makes
        # Lightning reuse that value and reset them, instead of averaging already global values across devices.
        spearman, pearson = self.eval_spearman.compute(), self.eval_pearson.compute()
        self.log(f"{split}/stsb_spearman", self.eval_spearman, prog_bar=True)
        self.log(f"{split}/stsb_pearson", self.eval_pearson)
        by_dimension = ""
        for dimension, metric in self.eval_spearman_by_dimension.items():  # Matryoshka: each truncation's
            by_dimension += f", dim {dimension} {100 * metric.compute():.2f}"
            self.log(spearman_by_dimension_name(split, int(dimension)), metric)
        rank_zero_info(
            f"{split} {self._evaluated_when()}: STS Spearman {100 * spearman:.2f}, Pearson {100 * pearson:.2f}"
            f"{by_dimension}"
        )

    def _evaluated_when(self) -> str:
        """What the printed scores are of: a step of this fit, or the model `cse validate|test` evaluate (their
        trainer's step is 0 whatever checkpoint they load)."""
        if self.trainer.sanity_checking:
            return "before training"
        if self.trainer.state.fn == TrainerFn.FITTING:
            return f"at step {self.global_step}"
        if self.loaded_checkpoint_step is None:
            return "of the base model"
        return f"of the checkpoint of step {self.loaded_checkpoint_step}"


def _signature_defaults() -> dict[str, object]:
    """`SimCSE`'s arguments' defaults, by name: which settings a config changed."""
    return {name: param.default for name, param in inspect.signature(SimCSE.__init__).parameters.items()}
