"""The LightningDataModule: tokenized training examples (any format) and scored pairs for validation."""

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from lightning.pytorch import LightningDataModule
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from lightning.pytorch.trainer.states import TrainerFn
from torch.utils.data import ConcatDataset, DataLoader
from transformers import PreTrainedTokenizerBase

from cse.config.lightning_settings import first_validation_step
from cse.data.collate import ExampleCollator, PairCollator
from cse.data.columns import TEXT_COLUMNS
from cse.data.derived_cache import derived_data_cache
from cse.data.mixture import MIXTURE_CHOICES, Mixture, MixtureSampler
from cse.data.no_duplicates_sampler import NoDuplicatesSampler
from cse.data.one_storage import OneStoragePerDtype
from cse.data.resumable import ResumableDataLoader, ResumableSampler
from cse.data.scored_pairs import read_scored_pairs
from cse.data.text_file import check_text_file
from cse.data.text_identity import row_text_ids
from cse.data.training_data import BadRows, announce_warnings, load_examples, tokenize_examples, warn_unused_columns
from cse.data.training_sources import NO_TRAINING_DATA, training_sources
from cse.data.word_repetition import IndexedRows, WordRepetition, max_added_tokens
from cse.data.worker_tokenization import Tokenize, TokenizingCollator, resolve_tokenize
from cse.errors import InputError
from cse.every_process_error import raise_in_every_process
from cse.models.batch import Mode
from cse.models.loading import load_tokenizer
from cse.models.prompt_template import sentence_as_tested


class SimCSEDataModule(LightningDataModule):
    """SimCSE data: sentences, pairs, triplets or scored pairs for training; STS scored pairs for validation.

    The training mode follows the columns (see `cse.data.columns`): one text column is unsupervised SimCSE,
    two are (anchor, positive) pairs, three add a hard negative, a score column trains on scored pairs.

    Args:
        train_file: `.txt` (one sentence per line), `.csv`, `.tsv`, `.jsonl`, `.json`, `.parquet`, a
            `datasets.save_to_disk` directory, or a hub dataset name. Not with `train_files`.
        train_files: several datasets in one run, each batch from one of them (in-batch negatives stay within a
            task): a list of files or `{file: PATH, columns: {...}}` maps, all of the same mode (see `columns`).
        mixture: how `train_files` take turns: `proportional` (every full batch of every dataset once per epoch, in
            a seeded random order) or `round_robin` (one batch of each in turn, in whole rounds until one runs out), as
            sentence-transformers' multi-dataset batch samplers.
        tokenize: `ahead` tokenizes all training texts before the first step (cached for the next run);
            `in_workers` tokenizes each batch in the DataLoader's workers (start-up independent of tokenization;
            set num_workers >= 1); `auto` is `in_workers` from 64 MiB of training data on, else `ahead`. The batches
            are the same either way.
        dev_file: scored pairs for validation (STS-B release/SentEval layout, or a header with
            sentence1, sentence2, score); validation is skipped without it.
        test_file: scored pairs for `cse test`, same layouts.
        tokenizer_name_or_path: set from `model.model_name_or_path` by the CLI.
        columns: SimCSE name -> column of `train_file`, e.g. `{sent0: premise, sent1: hypothesis, hard_neg: neg}`
            or `{sent0: sentence1, sent1: sentence2, score: labels.label}` (dots reach into nested fields).
            Default: `sent0`/`sent1`/`hard_neg` if present, else `sentence1`/`sentence2`/`score`, else column order.
        score_range: (low, high) of gold scores, mapped onto [0, 1], e.g. [0, 5] for STS; scores outside are errors.
        on_bad_rows: `error` stops at the first bad row (empty text, missing column, ragged line, bad score) naming
            file, line and column; `skip` leaves such rows out and warns with their count.
        no_duplicates: build batches in which no text appears twice across columns (repeated NLI premises
            would otherwise be false negatives); under DDP, across the batches of all processes of a step. Texts are
            compared normalized (`cse.data.text_identity`): case, Unicode forms and runs of spaces do not count.
        mlm_probability: mask this share of tokens for the MLM auxiliary loss; set by the CLI from `model.do_mlm`.
        word_repetition_rate: ESimCSE's dup_rate in (0, 1) (Wu et al., 2022, §3.1; 0.32 for BERT-base): each
            sentence is paired with a copy of itself with some subwords doubled (`cse.data.word_repetition`), the
            positive of (anchor, positive) batches. Single sentences only. None: off, SimCSE's dropout views.
        word_ids: give each token's word index in the batch (`word_ids`), for TSDAE's word deletion
            (`cse.models.word_deletion`); single sentences only; set by the CLI from `model.objective`.
        batch_size: examples per training batch on each device; 64 in unsupervised SimCSE.
        max_seq_length: truncation of training sentences in tokens; 32 in SimCSE (dev pairs are not truncated).
        pad_to_multiple_of: pad each training batch's length up to a multiple of this: 8 fills whole tensor-core
            tiles in fp16/bf16 (padding is masked out, so embeddings do not change); null pads to the longest text
            only. Dev and test pairs, encoded in float32, are padded to their batch's longest sentence.
        pad_to_max_length: pad every training batch to max_seq_length, so that its shape never changes; set by the CLI
            from `model.compile` (a compiled step is specialized to its shapes).
        eval_batch_size: pairs per validation batch.
        num_workers: DataLoader worker processes.
        cache_dir: where the tokenized data is cached; None for `datasets`' default cache.
        seed: seed of the training order (shuffle or duplicate-free batches); None follows the run's
            `seed_everything`, so a sweep over seeds varies the order as well as the initialization and dropout, as
            SimCSE's `--seed` does. Each epoch's order is a function of seed and epoch, and the seed is saved in
            checkpoints, so a resumed run continues it exactly.
    """

    def __init__(
        self,
        train_file: str | None = None,
        dev_file: str | None = None,
        test_file: str | None = None,
        tokenizer_name_or_path: str | None = None,
        columns: dict[str, str] | None = None,
        score_range: tuple[float, float] | None = None,
        on_bad_rows: BadRows = "error",
        no_duplicates: bool = False,
        mlm_probability: float | None = None,
        word_repetition_rate: float | None = None,
        word_ids: bool = False,
        batch_size: int = 64,
        max_seq_length: int = 32,
        pad_to_multiple_of: int | None = 8,
        pad_to_max_length: bool = False,
        eval_batch_size: int = 128,
        num_workers: int = 0,
        cache_dir: str | None = None,
        seed: int | None = None,
        train_files: list[str | dict[str, Any]] | None = None,
        mixture: Mixture = "proportional",
        tokenize: Tokenize = "auto",
    ) -> None:
        super().__init__()
        # In checkpoints, so that a resumed run can be checked against the data it was trained on (not logged: the
        # model logs its own arguments, and Lightning refuses two sets sharing a key with different values).
        self.save_hyperparameters(logger=False)
        if tokenizer_name_or_path is None:
            raise InputError("data.tokenizer_name_or_path: not set (the CLI links it to model.model_name_or_path)")
        for key, value in (
            ("batch_size", batch_size),
            ("max_seq_length", max_seq_length),
            ("pad_to_multiple_of", pad_to_multiple_of),
            ("eval_batch_size", eval_batch_size),
        ):
            if value is not None and value < 1:
                raise InputError(f"data.{key}: must be at least 1, got {value}")
        if num_workers < 0:
            raise InputError(f"data.num_workers: must be 0 (load in the training process) or more, got {num_workers}")
        if word_repetition_rate is not None and not 0 < word_repetition_rate < 1:
            raise InputError(
                f"data.word_repetition_rate: must be in (0, 1) (ESimCSE: 0.32) or null (off), "
                f"got {word_repetition_rate}"
            )
        if cache_dir is not None and Path(cache_dir).expanduser().is_file():
            raise InputError(f"data.cache_dir: {cache_dir} is a file; give a folder (made if missing)")
        if score_range is not None and not score_range[0] < score_range[1]:
            raise InputError(f"data.score_range: low must be below high, got {list(score_range)}")
        for what, file in (("dev file", dev_file), ("test file", test_file)):
            if file is not None:
                check_text_file(Path(file), what=what)
        self.sources = training_sources(train_file, columns, train_files)
        if mixture not in MIXTURE_CHOICES:
            raise InputError(f"data.mixture: {mixture!r} is not one of {', '.join(MIXTURE_CHOICES)}")
        if train_file is not None and mixture == "round_robin":  # the default, `proportional`, says nothing of one file
            raise InputError(
                f"data.mixture: {mixture} is how data.train_files take turns, and there is one data.train_file; "
                "leave it out"
            )
        if train_files is not None and no_duplicates:
            raise InputError("data.no_duplicates: not available with data.train_files (a mixture's own batch order)")
        self.tokenize_in_workers = resolve_tokenize(tokenize, [source.file for source in self.sources]) == "in_workers"
        self.mixed = train_files is not None
        self.mixture = mixture
        self.train_datasets: list[Dataset] = []
        self.train_file = train_file
        self.dev_file = dev_file
        self.test_file = test_file
        self.columns = columns
        self.score_range = score_range
        self.on_bad_rows = on_bad_rows
        self.no_duplicates = no_duplicates
        self.mlm_probability = mlm_probability
        self.word_repetition_rate = word_repetition_rate
        self.word_ids = word_ids
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.pad_to_multiple_of = pad_to_multiple_of
        self.pad_to_max_length = pad_to_max_length
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.cache_dir = cache_dir
        self.seed = seed
        self.tokenizer: PreTrainedTokenizerBase = load_tokenizer(tokenizer_name_or_path)
        if word_ids and not self.tokenizer.is_fast:  # at start for either data.tokenize, not at the first batch
            raise InputError(
                "model.objective: tsdae deletes words, which needs a fast tokenizer (word ids); "
                f"{type(self.tokenizer).__name__} of '{tokenizer_name_or_path}' is not one"
            )
        special = self.tokenizer.num_special_tokens_to_add()
        if max_seq_length <= special:
            raise InputError(
                f"data.max_seq_length: {max_seq_length} tokens leave no room for words after the tokenizer's "
                f"{special} special tokens; use at least {special + 1} (SimCSE: 32)"
            )
        self.train_dataset: Dataset | ConcatDataset | None = None
        self.train_sampler: ResumableSampler | None = None  # the training order, built with the data in `setup`
        self.mode: Mode | None = None
        self.train_text_ids: np.ndarray | None = None  # (N, k) ids of each row's texts, for no_duplicates
        self.eval_datasets: dict[tuple[str, bool], list[dict]] = {}  # by file and `_tests_prompt()`
        self._prepare_error: InputError | None = None  # what `prepare_data` refused, raised in `setup`

    def prepare_data(self) -> None:
        """Read (and tokenize ahead) the training data once (rank 0); `setup` on every rank then loads the cache.

        Not for `cse validate|test`, which need only their scored pairs (they refused to start without the corpus).
        """
        if self.trainer is not None and self.trainer.state.fn != TrainerFn.FITTING:
            return
        try:
            self._training_datasets(warn=False)
        except InputError as error:  # raised in `setup`, where every process takes part (`raise_in_every_process`)
            self._prepare_error = error

    def setup(self, stage: str) -> None:
        if stage == "fit":
            error, self._prepare_error = self._prepare_error, None
            if error is None:
                try:
                    self._setup_training()
                except InputError as setup_error:
                    error = setup_error
            raise_in_every_process(error, self.trainer)
        if stage == "validate":  # Lightning would validate on nothing, warn, and end as if it had succeeded
            missing = InputError("data.dev_file: not set; cse validate scores the model on that file of scored pairs")
            raise_in_every_process(missing if self.dev_file is None else None, self.trainer)
        files = {"fit": self.dev_file, "validate": self.dev_file, "test": self.test_file}
        if files.get(stage) is not None:
            key = (files[stage], self._tests_prompt())
            if key not in self.eval_datasets:
                self.eval_datasets[key] = self._tokenized_pairs(*key)

    def _setup_training(self) -> None:
        """The training data (the cache `prepare_data` wrote), checked against the settings, and its order."""
        self.train_datasets = self._training_datasets(warn=True)
        if self.word_ids and self.mode != "unsupervised":
            raise InputError(
                f"model.objective: tsdae trains on single sentences, but {self._training_source()} holds "
                f"{self.mode} examples; give a one-column corpus (e.g. a .txt file, one sentence per line)"
            )
        if self.word_repetition_rate is not None and self.mode != "unsupervised":
            raise InputError(
                f"data.word_repetition_rate: ESimCSE's word repetition makes the positive of a single sentence, "
                f"but {self._training_source()} has {self.mode} (use it with one sentence per example, or set it "
                "to null)"
            )
        processes = self._processes()[0]
        for source, dataset in zip(self.sources, self.train_datasets, strict=True):
            if len(dataset) < self.batch_size * processes:
                on_each = f" on each of {processes} processes" if processes > 1 else ""
                raise InputError(
                    f"data.batch_size: {self.batch_size}{on_each} is larger than the training data {source.file} "
                    f"({len(dataset)} examples); no full batch can be formed"
                )
        self.train_dataset = ConcatDataset(self.train_datasets) if self.mixed else self.train_datasets[0]
        self.train_sampler = self._training_sampler()
        self._check_validation_interval(len(self.train_sampler) // self.batch_size)

    def train_dataloader(self) -> ResumableDataLoader:
        sampler = self.train_sampler  # built with the data in `setup`, where it told the number of batches per epoch
        max_length = self.max_seq_length if self.pad_to_max_length else None
        dataset, repetition = self.train_dataset, None
        if self.word_repetition_rate is not None:  # seeded by the sampler's seed, which a resumed run restores
            dataset, repetition = IndexedRows(dataset), WordRepetition(self.word_repetition_rate, sampler)
            if max_length is not None:  # a repeated positive is longer than its truncated sentence
                max_length += max_added_tokens(self.max_seq_length, self.word_repetition_rate)
        collate = ExampleCollator(
            self.tokenizer,
            self.mlm_probability,
            self.pad_to_multiple_of,
            max_length,
            word_repetition=repetition,
            word_ids=self.word_ids,
        )
        if self.tokenize_in_workers:
            collate = TokenizingCollator(self.tokenizer, self.max_seq_length, collate, self.word_ids)
        if self.num_workers > 0:  # one storage per dtype: one handshake per batch to take it from a worker
            collate = OneStoragePerDtype(collate)
        return ResumableDataLoader(
            dataset,
            self.batch_size,
            sampler=sampler,
            drop_last=True,  # equal batch shapes on every rank, and InfoNCE never sees a tiny last batch
            collate_fn=collate,
            generator=torch.Generator().manual_seed(self.order_seed()),  # iterating draws nothing from the global RNG
            **self._loader_options(),
        )

    def _training_sampler(self) -> ResumableSampler:
        """The training order: each process takes its own share of one seeded order, a function of (seed, epoch), so
        a resumed run sees the same order; Lightning leaves these DistributedSamplers as they are."""
        processes, rank = self._processes()
        seed = self.order_seed()
        if self.no_duplicates:
            sampler = NoDuplicatesSampler(self.train_text_ids, self.batch_size, processes, rank, seed)
            if len(sampler) == 0:  # Lightning would end the run at once, untrained, and say nothing more
                raise InputError(
                    f"data.no_duplicates: {self._training_source()} ({len(self.train_dataset)} examples) has no "
                    f"{self.batch_size * processes} rows without a text in common to form one batch; lower "
                    "data.batch_size, or set data.no_duplicates: false"
                )
            return sampler
        if self.mixed:
            lengths = [len(dataset) for dataset in self.train_datasets]
            return MixtureSampler(lengths, self.batch_size, self.mixture, processes, rank, seed)
        return ResumableSampler(self.train_dataset, processes, rank, seed)

    def _check_validation_interval(self, batches: int) -> None:
        """Refuse a validation interval (in batches) longer than the epoch's `batches`, where Lightning validates at
        most once per epoch: its own check raises a ValueError with a traceback, after the run has started."""
        trainer = self.trainer
        validates = (
            trainer is not None and trainer.check_val_every_n_epoch is not None and trainer.limit_val_batches > 0
        )
        if validates and isinstance(trainer.val_check_interval, int) and trainer.val_check_interval > batches:
            raise InputError(  # Lightning's own check raises a ValueError with a traceback
                f"trainer.val_check_interval: {trainer.val_check_interval} is more than the {batches} training "
                f"batches per epoch ({len(self.train_dataset)} examples of {self._training_source()}, "
                f"batch size {self.batch_size}); lower it, or set trainer.check_val_every_n_epoch: null to count "
                "across epochs"
            )
        first = first_validation_step(trainer, batches) if validates and self.dev_file is not None else None
        if first is not None and trainer.max_steps != -1 and first > trainer.max_steps:
            raise InputError(
                f"trainer.val_check_interval: {trainer.val_check_interval} with trainer.check_val_every_n_epoch "
                f"{trainer.check_val_every_n_epoch} first validates after step {first} ({batches} training batches "
                f"per epoch), more than trainer.max_steps {trainer.max_steps}: the run would never validate on "
                "data.dev_file, and would export its last checkpoint unevaluated"
            )

    def val_dataloader(self) -> DataLoader | list:
        return self._pairs_loader(self.dev_file)

    def test_dataloader(self) -> DataLoader | list:
        return self._pairs_loader(self.test_file)

    def _pairs_loader(self, file: str | None) -> DataLoader | list:
        """Scored pairs, longest first (see `_tokenized_pairs`); under DDP device r of N takes pairs r, r + N, ...,
        each pair exactly once.

        Lightning's default `DistributedSampler` would pad the pairs to a multiple of the device count with
        repeated pairs, which changes the Spearman correlation that torchmetrics gathers from all devices.
        """
        if file is None:
            return []
        dataset, sampler = self.eval_datasets[file, self._tests_prompt()], None
        if self.trainer is not None and self.trainer.world_size > 1:
            sampler = UnrepeatedDistributedSampler(dataset, shuffle=False, **self.trainer.distributed_sampler_kwargs)
        return DataLoader(
            dataset,
            batch_size=self.eval_batch_size,
            sampler=sampler,
            # Padded to the batch's longest sentence only, not to pad_to_multiple_of: pairs are encoded in float32,
            # where lengths in whole fp16/bf16 tensor-core tiles gain nothing (STS-B dev: 1.26 instead of 1.49 times
            # its real tokens).
            collate_fn=PairCollator(self.tokenizer),
            # Its own generator: each iterator draws a base seed, and from the global generator that would shift
            # training's dropout masks (a resumed run makes one when it skips the validation it resumes after).
            generator=torch.Generator(),
            **self._loader_options(),
        )

    def order_seed(self) -> int:
        """`seed`, else the seed of the run's `seed_everything` (Lightning keeps it in PL_GLOBAL_SEED), else 0."""
        if self.seed is not None:
            return self.seed
        return int(os.environ.get("PL_GLOBAL_SEED", 0))

    def _training_source(self) -> str:
        """The training file, or the files of a mixture, as messages name them."""
        return self.train_file or f"data.train_files ({', '.join(source.file for source in self.sources)})"

    def _processes(self) -> tuple[int, int]:
        """(training processes, this process's global rank): (1, 0) without a distributed trainer."""
        if self.trainer is None:
            return 1, 0
        return self.trainer.world_size, self.trainer.global_rank

    def _loader_options(self) -> dict:
        return {
            "num_workers": self.num_workers,
            "pin_memory": torch.cuda.is_available(),
            "persistent_workers": self.num_workers > 0,
        }

    def _training_datasets(self, warn: bool) -> list[Dataset]:
        """Per source, its rows: tokenized (ahead), or as texts for the workers to tokenize; sets `mode`, and the
        text ids of `no_duplicates`. `warn`: say the data's warnings (in `setup`, not again after `prepare_data`)."""
        if not self.sources:
            raise InputError(NO_TRAINING_DATA)
        datasets, modes = [], {}
        for source in self.sources:
            examples = load_examples(source.file, source.columns, self.score_range, self.on_bad_rows, self.cache_dir)
            if warn:
                announce_warnings(examples)
                warn_unused_columns(source.file, examples)
            modes[source.file] = examples.mapping.mode
            if self.no_duplicates:  # one source: a mixture refuses no_duplicates
                columns = [name for name in TEXT_COLUMNS if name in examples.dataset.column_names]
                cache = derived_data_cache(self.cache_dir)
                self.train_text_ids = row_text_ids(examples.dataset, columns, cache, examples.fingerprint)
            if self.tokenize_in_workers:
                datasets.append(examples.dataset)
            else:
                datasets.append(
                    tokenize_examples(examples, self.tokenizer, self.max_seq_length, self.cache_dir, self.word_ids)
                )
        if len(set(modes.values())) > 1:
            found = ", ".join(f"{file}: {mode}" for file, mode in modes.items())
            raise InputError(f"data.train_files: every dataset of a mixture must have the same mode, got {found}")
        self.mode = next(iter(modes.values()))
        return datasets

    def _tests_prompt(self) -> bool:
        """Whether `cse validate|test` evaluate a PromptBERT model: its sentences are then those of the reference's
        test (`sentence_as_tested`); `cse fit` validates them as given, as the reference's trainer does."""
        trainer = self.trainer
        if trainer is None or trainer.state.fn == TrainerFn.FITTING:
            return False
        return getattr(getattr(trainer.lightning_module, "encoder", None), "prompt", None) is not None

    def _tokenized_pairs(self, file: str, tested: bool = False) -> list[dict]:
        """The file's scored pairs, tokenized, longest first (a pair's length is its longer sentence's); `tested`:
        each sentence as PromptBERT's test puts it in the template (`sentence_as_tested`).

        In that order each batch holds pairs of about the same length, so padding to the batch's longest sentence
        costs less: on STS-B dev at 128 pairs per batch (bert-base-uncased's tokenizer), 1.26 times the real tokens
        instead of 2.08 in file order.
        Spearman and Pearson correlations do not depend on the order; the longest batch comes first.
        """
        pairs = read_scored_pairs(file)
        prepare = sentence_as_tested if tested else str
        # No max_seq_length here: SimCSE's evaluation encodes dev sentences whole (model limit only).
        first = self.tokenizer([prepare(text) for text in pairs.sentence1], truncation=True)
        second = self.tokenizer([prepare(text) for text in pairs.sentence2], truncation=True)
        rows = [
            {
                "sentence1": {key: values[index] for key, values in first.items()},
                "sentence2": {key: values[index] for key, values in second.items()},
                "score": score,
            }
            for index, score in enumerate(pairs.scores)
        ]
        return sorted(
            rows, key=lambda row: -max(len(row["sentence1"]["input_ids"]), len(row["sentence2"]["input_ids"]))
        )
