"""The peer: sentence-transformers' `SentenceTransformerTrainer` on the benchmark's sentences as (s, s) pairs, in the
same batches and order as cse's and the floor's, timed in blocks by the same clock."""

import argparse
from pathlib import Path

import torch
from benchmark_clock import Timings
from benchmark_data import SEED
from benchmark_floor import LEARNING_RATE, TEMPERATURE
from datasets import Dataset as ArrowDataset
from torch import nn
from torch.utils.data import BatchSampler, SequentialSampler
from transformers import TrainerCallback

PEER = "sentence-transformers"


def run_sentence_transformers(
    args: argparse.Namespace, model_dir: str, run_dir: str, timings: Timings, sentences: list[str]
) -> None:
    """Time sentence-transformers' trainer on the sentences (in batch order) as (s, s) pairs; adds its blocks to
    `timings`."""
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer import losses, modules

    torch.manual_seed(0)
    transformer = modules.Transformer(model_dir, max_seq_length=args.max_seq_length)
    hidden = transformer.model.config.hidden_size
    pooling = modules.Pooling(hidden, pooling_mode="cls")
    mlp = modules.Dense(hidden, hidden, activation_function=nn.Tanh())  # cse's `cls` MLP: Linear(H, H) + Tanh
    model = SentenceTransformer(modules=[transformer, pooling, mlp], device=args.device)
    training = SentenceTransformerTrainingArguments(
        output_dir=str(Path(run_dir) / "sentence-transformers"),
        max_steps=len(sentences) // args.batch_size,
        per_device_train_batch_size=args.batch_size,
        learning_rate=LEARNING_RATE,
        warmup_steps=0,
        max_grad_norm=args.gradient_clip_val,
        fp16=args.precision == "16-mixed",
        bf16=args.precision == "bf16-mixed",
        use_cpu=args.device == "cpu",
        seed=SEED,
        batch_sampler=_batches_in_order,
        dataloader_drop_last=True,
        dataloader_num_workers=args.num_workers,
        dataloader_persistent_workers=args.num_workers > 0,
        dataloader_pin_memory=args.device == "cuda",
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,  # as cse's progress bar
        torch_compile_mode=args.compile,  # compiles the whole model (its own batches have fixed shapes here)
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=training,
        train_dataset=ArrowDataset.from_dict({"anchor": sentences, "positive": sentences}),
        loss=losses.MultipleNegativesRankingLoss(model, scale=1 / TEMPERATURE),
        callbacks=[PeerClock(timings)],
    )
    trainer.train()


def _batches_in_order(dataset: ArrowDataset, batch_size: int, drop_last: bool, **_: object) -> BatchSampler:
    """sentence-transformers' default batch sampler without its shuffle: batch k is the pairs [kB, (k + 1)B), the same
    sentences as cse's and the floor's batch k."""
    from sentence_transformers.base.sampler import DefaultBatchSampler

    return DefaultBatchSampler(SequentialSampler(dataset), batch_size=batch_size, drop_last=drop_last)


class PeerClock(TrainerCallback):
    """Times sentence-transformers' steps in blocks: from one block's last `on_step_end` to the next one's."""

    def __init__(self, timings: Timings) -> None:
        self.timings = timings
        self._last = 0.0

    def on_train_begin(self, args, state, control, **kwargs) -> None:
        self._last = self.timings.now()

    def on_step_end(self, args, state, control, **kwargs) -> None:
        if state.global_step % self.timings.block:
            return
        end = self.timings.now()
        self.timings.record(PEER, end - self._last, state.global_step // self.timings.block)
        self._last = end
