"""The LightningDataModule: a tokenized sentence corpus for training and scored pairs for validation."""

from pathlib import Path

import torch
from datasets import Dataset
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from cse.data.collate import PairCollator
from cse.data.corpus import load_sentences, tokenize_sentences
from cse.data.scored_pairs import read_scored_pairs
from cse.data.text_file import check_text_file
from cse.errors import InputError
from cse.models.loading import load_tokenizer


class SimCSEDataModule(LightningDataModule):
    """Unsupervised SimCSE data: sentences for training, STS-style scored pairs for validation and test.

    Args:
        train_file: a `.txt` corpus, one sentence per line (blank lines skipped), or a hub dataset name.
        dev_file: scored pairs for validation (STS-B release/SentEval layout, or a header with
            sentence1, sentence2, score); validation is skipped without it.
        test_file: scored pairs for `cse test`, same layouts.
        tokenizer_name_or_path: set from `model.model_name_or_path` by the CLI.
        batch_size: sentences per training batch on each device (each is encoded twice); 64 in SimCSE.
        max_seq_length: truncation length of training sentences in tokens; 32 in SimCSE (dev pairs are not truncated).
        eval_batch_size: pairs per validation batch.
        num_workers: DataLoader worker processes.
        cache_dir: where the tokenized corpus is cached; None for `datasets`' default cache.
    """

    def __init__(
        self,
        train_file: str,
        dev_file: str | None = None,
        test_file: str | None = None,
        tokenizer_name_or_path: str | None = None,
        batch_size: int = 64,
        max_seq_length: int = 32,
        eval_batch_size: int = 128,
        num_workers: int = 0,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__()
        if tokenizer_name_or_path is None:
            raise InputError("data.tokenizer_name_or_path: not set (the CLI links it to model.model_name_or_path)")
        for key, value in (("batch_size", batch_size), ("max_seq_length", max_seq_length)):
            if value < 1:
                raise InputError(f"data.{key}: must be at least 1, got {value}")
        for what, file in (("dev file", dev_file), ("test file", test_file)):
            if file is not None:
                check_text_file(Path(file), what=what)
        self.train_file = train_file
        self.dev_file = dev_file
        self.test_file = test_file
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.cache_dir = cache_dir
        self.tokenizer: PreTrainedTokenizerBase = load_tokenizer(tokenizer_name_or_path)
        self.train_dataset: Dataset | None = None
        self.eval_datasets: dict[str, list[dict]] = {}

    def prepare_data(self) -> None:
        """Tokenize the corpus once (rank 0); `setup` on every rank then loads the cached result."""
        self._tokenized_corpus()

    def setup(self, stage: str) -> None:
        if stage == "fit":
            self.train_dataset = self._tokenized_corpus()
            if len(self.train_dataset) < self.batch_size:
                raise InputError(
                    f"data.batch_size: {self.batch_size} is larger than the corpus {self.train_file} "
                    f"({len(self.train_dataset)} sentences); no full batch can be formed"
                )
        files = {"fit": self.dev_file, "validate": self.dev_file, "test": self.test_file}
        if files.get(stage) is not None and files[stage] not in self.eval_datasets:
            self.eval_datasets[files[stage]] = self._tokenized_pairs(files[stage])

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_dataset,
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=True,  # equal batch shapes on every rank, and InfoNCE never sees a tiny last batch
            collate_fn=DataCollatorWithPadding(self.tokenizer, return_tensors="pt"),
            **self._loader_options(),
        )

    def val_dataloader(self) -> DataLoader | list:
        return self._pairs_loader(self.dev_file)

    def test_dataloader(self) -> DataLoader | list:
        return self._pairs_loader(self.test_file)

    def _pairs_loader(self, file: str | None) -> DataLoader | list:
        if file is None:
            return []
        return DataLoader(
            self.eval_datasets[file],
            batch_size=self.eval_batch_size,
            shuffle=False,
            collate_fn=PairCollator(self.tokenizer),
            **self._loader_options(),
        )

    def _loader_options(self) -> dict:
        return {
            "num_workers": self.num_workers,
            "pin_memory": torch.cuda.is_available(),
            "persistent_workers": self.num_workers > 0,
        }

    def _tokenized_corpus(self) -> Dataset:
        sentences = load_sentences(self.train_file, self.cache_dir)
        return tokenize_sentences(sentences, self.tokenizer, self.max_seq_length)

    def _tokenized_pairs(self, file: str) -> list[dict]:
        pairs = read_scored_pairs(file)
        # No max_seq_length here: SimCSE's evaluation encodes dev sentences whole (model limit only).
        first = self.tokenizer(pairs.sentence1, truncation=True)
        second = self.tokenizer(pairs.sentence2, truncation=True)
        return [
            {
                "sentence1": {key: values[index] for key, values in first.items()},
                "sentence2": {key: values[index] for key, values in second.items()},
                "score": score,
            }
            for index, score in enumerate(pairs.scores)
        ]
