"""`cse fit|validate|test --config RECIPE|FILE`: a LightningCLI of `SimCSE` and `SimCSEDataModule`.

On top of Lightning's: the best checkpoint by STS-B dev Spearman and the last one are kept, the best is exported at
the end with its model card, settings are checked before anything is built (`cse.config`), each run claims its own
folder and a resumed run continues its folder and is checked against its checkpoint (`cse.runs`). Nothing is written
in the run folder before the settings that depend on the training data are checked too (in the data module's and the
model's `setup`): a refused run leaves no folder, and a refused resume leaves its run as it was.
"""

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.plugins.io import CheckpointIO

from cse.callbacks.lightning_overhead import NoProfiler, leave_out_unused_hooks
from cse.callbacks.loader_position import LoaderPositionRestore
from cse.callbacks.non_finite_guard import NonFiniteGuard
from cse.callbacks.periodic_checkpoint import PeriodicCheckpoint
from cse.callbacks.preemption import PreemptionCheckpoint
from cse.callbacks.progress_bar import timed_progress_bar
from cse.callbacks.resumed_checkpoints import ResumedCheckpointPaths
from cse.callbacks.resumed_learning_rate import ResumedLearningRate
from cse.callbacks.resumed_log_step import ResumedLogStep
from cse.callbacks.resumed_metrics import ResumedMetrics
from cse.callbacks.rng_state import RngStateCheckpoint
from cse.callbacks.step_settings import StepSettingsCheckpoint
from cse.callbacks.throughput import ThroughputLog
from cse.config.given_settings import given_keys
from cse.config.hardware import (
    check_gpu_present,
    check_launched_processes,
    precision_for_hardware,
    refused_hardware_settings,
)
from cse.config.lightning_settings import (
    check_lightning_settings,
    check_training_callbacks,
    check_training_precision,
)
from cse.config.recipes import resolve_config
from cse.config.seed_range import check_seed
from cse.config.yaml_file import check_config_file
from cse.data.datamodule import SimCSEDataModule
from cse.data.training_sources import NO_TRAINING_DATA
from cse.errors import InputError
from cse.export.checkpoint import export_checkpoint
from cse.first_process import quiet_other_processes, seed_every_process
from cse.library_notices import quiet_resumed_checkpoint_folder
from cse.models.simcse import SimCSE
from cse.runs.background_checkpoint_io import BackgroundCheckpointIO
from cse.runs.checkpoint_file import load_checkpoint
from cse.runs.layout import BEST_CHECKPOINT_FILENAME, BEST_MODEL_DIR
from cse.runs.metrics_history import continue_metrics
from cse.runs.resume import (
    choose_run_folder,
    evaluation_checkpoint,
    evaluation_loggers,
    remove_unused_folders,
    resume_checkpoint,
)
from cse.runs.resumed_settings import check_evaluated_settings, check_resumed_backbone, check_resumed_settings
from cse.runs.run_config import RunConfigFile
from cse.runs.validation_curve import write_run_curve

BEST_MODEL_LINE_PREFIX = "best model: "  # the exported directory follows it, at the end of cse fit's last line
PERIODIC_CHECKPOINT_STEPS = 500  # a crash loses at most this many steps; each save writes weights and AdamW state


def run(argv: list[str]) -> None:
    """`cse fit|validate|test ...`: `argv` starts with the subcommand."""
    run_lightning_cli(argv)


class SimCSECLI(LightningCLI):
    """LightningCLI with SimCSE's checkpointing: keep the best model by STS-B dev Spearman, and the last one."""

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """Lightning's, without `predict`: SimCSE has no prediction step (`cse encode` embeds sentences)."""
        return {name: keys for name, keys in LightningCLI.subcommands().items() if name != "predict"}

    def __init__(self, *args, **kwargs) -> None:
        self.created_folders: list[Path] = []
        self.args: list[str] = []
        quiet_other_processes()  # before the seed's line and the run folder's claim, which are the first process's
        try:
            super().__init__(*args, **kwargs)
        finally:  # a run that stopped before writing anything (a refused setting) leaves no empty folder behind
            remove_unused_folders(self.created_folders)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("model.model_name_or_path", "data.tokenizer_name_or_path")
        parser.link_arguments(("model.do_mlm", "model.mlm_probability"), "data.mlm_probability", compute_fn=_masking)
        parser.link_arguments("model.objective", "data.word_ids", compute_fn=_deletes_words)
        # A compiled training step is specialized to its shapes: pad every batch to max_seq_length.
        parser.link_arguments("model.compile", "data.pad_to_max_length", compute_fn=bool)
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        # A second ModelCheckpoint, without monitor: `last.ckpt` every N steps, to resume a crashed or preempted run.
        parser.add_lightning_class_args(PeriodicCheckpoint, "periodic_checkpoint")
        parser.add_lightning_class_args(NonFiniteGuard, "non_finite_guard")
        parser.add_lightning_class_args(RngStateCheckpoint, "rng_state")
        parser.add_lightning_class_args(PreemptionCheckpoint, "preemption")
        parser.add_lightning_class_args(ThroughputLog, "throughput")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/stsb_spearman",
                "checkpoint.mode": "max",
                "checkpoint.save_last": True,
                "checkpoint.filename": BEST_CHECKPOINT_FILENAME,
                "checkpoint.auto_insert_metric_name": False,
                "periodic_checkpoint.every_n_train_steps": PERIODIC_CHECKPOINT_STEPS,
                "periodic_checkpoint.save_top_k": 0,  # only last.ckpt; the best ones are `checkpoint`'s
                "periodic_checkpoint.save_last": True,
                # Both write last.ckpt, the newer state replacing the older (no last-v1.ckpt beside it).
                "checkpoint.enable_version_counter": False,
                "periodic_checkpoint.enable_version_counter": False,
            }
        )

    def parse_arguments(self, parser: LightningArgumentParser, args: list[str]) -> None:
        """Lightning's, keeping `args`: which settings they give (`_parse_ckpt_path`)."""
        self.args = list(args)
        super().parse_arguments(parser, args)

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        check_gpu_present(config.trainer.accelerator)
        if self.subcommand == "fit":
            check_training_precision(config.trainer.precision)
            if config.data.train_file is None and config.data.train_files is None:  # before the model loads
                raise InputError(NO_TRAINING_DATA)
        check_launched_processes(config.trainer.devices, config.trainer.num_nodes)
        config.trainer.precision = precision_for_hardware(config.trainer.precision, config.trainer.accelerator)
        if str(config.model.model_name_or_path).startswith("~"):  # a home path, which transformers takes for a hub id
            config.model.model_name_or_path = str(Path(config.model.model_name_or_path).expanduser())
            config.data.tokenizer_name_or_path = config.model.model_name_or_path  # linked at parsing, before this
        # validate and test each read only their own file of scored pairs: a recipe's other one need not exist here.
        if self.subcommand == "test":
            if config.data.test_file is None:
                raise InputError("data.test_file: not set; cse test scores the model on that file of scored pairs")
            config.data.dev_file = None
        elif self.subcommand == "validate":
            config.data.test_file = None
        if self.subcommand in ("validate", "test"):
            config.trainer.logger = evaluation_loggers(config.trainer.logger)
        if config.data.dev_file is None:
            config.checkpoint.monitor = None  # no dev set: keep the last checkpoint only
        check_lightning_settings(config)
        if "weights_only" in config and config.weights_only is None:
            config.weights_only = True  # Lightning's default for a remote --ckpt_path is False: loading could run code
        if config.trainer.strategy == "dp":  # Lightning 2 has no DataParallel and would end in a traceback
            raise InputError(
                "trainer.strategy: DataParallel ('dp') is not supported; use 'ddp' with trainer.devices set to the "
                "number of GPUs, which also takes in-batch negatives from every GPU (see docs/multi_gpu.md)"
            )
        if self.subcommand == "fit":
            self.created_folders = choose_run_folder(config)

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """Lightning's trainer; `fit` writes its checkpoints in the background (`BackgroundCheckpointIO`), unless
        `trainer.plugins` names a checkpoint IO of its own. Its progress bar is Lightning's, updated at most twice a
        second (`cse.callbacks.progress_bar`), unless it is off or `trainer.callbacks` names one. Without
        `trainer.profiler`, Lightning's default one without its per-call cost (`NoProfiler`)."""
        trainer = self._get(self.config_init, "trainer", default={})
        if self.subcommand == "fit":
            kwargs["plugins"] = _with_default(trainer.get("plugins"), CheckpointIO, BackgroundCheckpointIO)
        if trainer.get("profiler") is None:
            kwargs["profiler"] = NoProfiler()
        if trainer.get("enable_progress_bar") is not False:
            kwargs["callbacks"] = _with_default(trainer.get("callbacks"), ProgressBar, timed_progress_bar)
        try:
            return super().instantiate_trainer(**kwargs)
        except Exception as error:  # Lightning's refusals of hardware settings: one line, not a traceback
            refusal = refused_hardware_settings(error, trainer)
            if refusal is None:
                raise
            raise refusal from error

    def _set_seed(self) -> None:
        """Lightning's seeding, after a one-line check of `seed_everything` (numpy's range; Lightning's own check of it
        ends in a traceback), its "Seed set to N" line printed by the first process alone (`cse.first_process`)."""
        seed = self._get(self.config, "seed_everything")
        if seed is False:
            return
        if not isinstance(seed, bool) and isinstance(seed, int):
            check_seed(seed, "seed_everything")
        seed = seed_every_process(None if seed is True else seed)  # True: Lightning's choice
        (self.config[self.subcommand] if self.subcommand else self.config)["seed_everything"] = seed

    def _parse_ckpt_path(self) -> None:
        """`--ckpt_path FILE`: read it safely first (a damaged or unsafe file is one line, before Lightning reads it).

        For `validate` and `test`, Lightning then takes the model's settings from the checkpoint, after a `model.*`
        setting given that differs from the checkpoint's is refused (it would be ignored). Not for `fit`: Lightning
        would silently replace the config's `model.*` values with the checkpoint's; `before_fit` refuses the ones
        that contradict it instead (`cse.runs.resumed_settings`).
        """
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if subcommand in ("validate", "test"):
            ckpt_path = self.config[subcommand].ckpt_path = evaluation_checkpoint(ckpt_path, self.config[subcommand])
        if ckpt_path and Path(ckpt_path).is_file():
            checkpoint = load_checkpoint(ckpt_path, metadata_only=True)
            if subcommand in ("validate", "test"):
                given = given_keys(self.args, "model")
                check_evaluated_settings(checkpoint, self.config[subcommand].model, given, ckpt_path, subcommand)
        if subcommand != "fit":
            super()._parse_ckpt_path()

    def before_fit(self) -> None:
        """`--ckpt_path last|PATH`: the checkpoint to resume (`last`: the experiment's newest), its run continued.

        `trainer.val_check_interval` given as a number of steps counts optimizer steps, with gradient accumulation too.
        """
        config = self.config_init[self.subcommand]
        validates, logs = self.datamodule.dev_file is not None, bool(self.trainer.loggers)
        check_training_callbacks(self.trainer.callbacks, validates=validates, logs=logs)
        self.trainer.callbacks.append(StepSettingsCheckpoint())
        if isinstance(self.trainer.val_check_interval, int):
            # An interval in optimizer steps, as SimCSE's --eval_steps; Lightning counts batches.
            self.trainer.val_check_interval *= self.trainer.accumulate_grad_batches
        config.ckpt_path = resume_checkpoint(self.trainer, config.ckpt_path)
        if config.ckpt_path is not None and Path(config.ckpt_path).is_file():
            checkpoint = load_checkpoint(config.ckpt_path, metadata_only=True)
            check_resumed_settings(checkpoint, self.config[self.subcommand], config.ckpt_path)
            check_resumed_backbone(checkpoint, self.model, config.ckpt_path, self.model.hparams.model_name_or_path)
            self.trainer.callbacks.append(ResumedCheckpointPaths(config.ckpt_path))
            self.trainer.callbacks.append(LoaderPositionRestore())
            self.trainer.callbacks.append(ResumedLogStep())
            self.trainer.callbacks.append(ResumedLearningRate())
            quiet_resumed_checkpoint_folder()
            kept_aside = continue_metrics(self.trainer.logger, config.ckpt_path)
            if kept_aside is not None:  # put back if the run stops before it starts fitting
                self.trainer.callbacks.append(ResumedMetrics(kept_aside))
        if self.trainer.fast_dev_run:  # Lightning 2.6's ModelCheckpoint.on_train_end saves last.ckpt even then
            for callback in self.trainer.checkpoint_callbacks:
                if isinstance(callback, ModelCheckpoint):
                    callback.save_last = False
        leave_out_unused_hooks(self.trainer.callbacks, self.model)  # every callback is known by now

    def after_fit(self) -> None:
        """Draw the run's validation curve, and export the best checkpoint of `checkpoint.*` (or the last, without a
        dev set) with its model card, as `cse export` does; a ModelCheckpoint in `trainer.callbacks` keeps its own.

        The last line printed gives the run's throughput and the exported model:
        `trained 1,000 steps in 38 s: 26.04 steps/s, 1,667 sentences/s, 9% of the time validating; best model: DIR`.
        """
        # cse's own (`checkpoint.*`): Lightning's `trainer.checkpoint_callback` is the first of `trainer.callbacks`
        checkpoint = self._get(self.config_init, "checkpoint")
        best = checkpoint.best_model_path or checkpoint.last_model_path if checkpoint else ""
        log_dir = self.trainer.log_dir  # a broadcast under DDP: every rank must take part, before rank 0 goes on alone
        if not self.trainer.is_global_zero:
            return
        checkpoint_io = self.trainer.strategy.checkpoint_io
        if isinstance(checkpoint_io, BackgroundCheckpointIO):
            checkpoint_io.raise_write_error()  # a checkpoint that failed to be written is not exported
        throughput = next(callback for callback in self.trainer.callbacks if isinstance(callback, ThroughputLog))
        parts = [throughput.run.summary()] if throughput.run is not None else []
        if log_dir is not None:  # no logger (fast_dev_run): no metrics.csv to draw
            write_run_curve(log_dir)  # validation_curve.png beside metrics.csv (needs matplotlib)
        if best:
            out_dir = Path(log_dir).resolve() / BEST_MODEL_DIR
            export_checkpoint(best, out_dir, run_dir=log_dir, overwrite=True)
            parts.append(f"{BEST_MODEL_LINE_PREFIX}{out_dir}")
        if parts:
            print("; ".join(parts), flush=True)


def _with_default(items: object, kind: type, make: Callable[[], object]) -> list:
    """`trainer.plugins` or `trainer.callbacks` (None, one object or several) as a list, with `make()` added where no
    item is a `kind`: `BackgroundCheckpointIO` without a `CheckpointIO`, `timed_progress_bar()` without a
    `ProgressBar`."""
    items = [] if items is None else list(items) if isinstance(items, list | tuple) else [items]
    if not any(isinstance(item, kind) for item in items):
        items.append(make())
    return items


def _masking(do_mlm: bool, mlm_probability: float) -> float | None:
    """The data module masks tokens only when the model trains with the MLM auxiliary loss."""
    return mlm_probability if do_mlm else None


def _deletes_words(objective: str) -> bool:
    """The data module gives word ids only for TSDAE, which deletes words."""
    return objective == "tsdae"


def run_lightning_cli(args: list[str], cli: type[SimCSECLI] = SimCSECLI) -> None:
    """Parse `args` (the subcommand first) and run them with `cli`, `SimCSECLI` or a subclass of it."""
    # `args` replaces sys.argv on purpose (recipe names resolved, quickstart paths filled in).
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
    cli(
        SimCSE,
        SimCSEDataModule,
        args=_with_resolved_configs(args),
        save_config_callback=RunConfigFile,  # written once every setting is checked
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"exit_on_error": False, "prog": "cse"},  # a bad option raises: `main` prints it as one line
        auto_configure_optimizers=False,  # SimCSE's AdamW + per-step linear decay come from the module
    )


def _with_resolved_configs(args: list[str]) -> list[str]:
    """Let `--config NAME` name a shipped recipe (`--config quickstart`); YAML errors are one line with the file's."""
    resolved = list(args)
    for index, arg in enumerate(resolved):
        if arg == "--config" and index + 1 < len(resolved):
            resolved[index + 1] = resolve_config(resolved[index + 1])
            check_config_file(resolved[index + 1])
        elif arg.startswith("--config="):
            resolved[index] = "--config=" + resolve_config(arg.removeprefix("--config="))
            check_config_file(resolved[index].removeprefix("--config="))
    return resolved
