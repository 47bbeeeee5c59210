"""`cse fit` leaves out Lightning's per-step calls that do nothing (`cse.callbacks.lightning_overhead`) and trains
exactly as with them."""

import csv
import logging
import re
from collections import Counter
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback, LightningModule
from lightning.pytorch.profilers import PassThroughProfiler
from torch import nn

from cse.callbacks import lightning_overhead
from cse.callbacks.lightning_overhead import TRAINING_STEP_HOOKS, PlainHookName
from cse.commands import fit

pytestmark = pytest.mark.usefixtures("one_torch_thread")

STEPS = 4
TIMINGS = {"train/steps_per_sec", "train/sentences_per_sec", "val/seconds"}  # the clock's columns differ run to run


class RecordingProfiler(PassThroughProfiler):
    """Records the action name of every `profile(name)` call Lightning makes."""

    def __init__(self) -> None:
        super().__init__()
        self.actions: list[str] = []

    def profile(self, action_name: str):  # type: ignore[override]
        self.actions.append(action_name)
        return super().profile(action_name)


def _fit(shrunk_recipe_args, run_cse, directory: Path, monkeypatch, *, leave_out: bool) -> tuple[list[str], Path]:
    """A seeded `cse fit` of the quickstart recipe in `directory`: (the profiled action names, the run folder)."""
    profiler = RecordingProfiler()
    with monkeypatch.context() as patched:
        patched.setattr(fit, "NoProfiler", lambda: profiler)
        if not leave_out:
            patched.setattr(fit, "leave_out_unused_hooks", lambda callbacks, module: None)
        patched.chdir(directory)
        args = shrunk_recipe_args("quickstart", max_steps=STEPS, log_every_n_steps=1, num_sanity_val_steps=0)
        assert run_cse(args).code == 0
    return profiler.actions, directory / "runs" / "quickstart" / "version_0"


def _metrics(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open() as file:
        return [{key: value for key, value in row.items() if key not in TIMINGS} for row in csv.DictReader(file)]


def _per_batch_calls(actions: list[str]) -> Counter:
    """(object, hook) -> calls, for the callback and LightningModule hooks of `TRAINING_STEP_HOOKS`."""
    pattern = re.compile(r"\[(Callback|LightningModule)\](.+)\.(\w+)$")
    calls = Counter()
    for action in actions:
        match = pattern.match(action)
        if match and match[3] in TRAINING_STEP_HOOKS:
            calls[match[2], match[3]] += 1
    return calls


def _implements(name: str, hook: str) -> bool:
    """Whether the callback or module class named by a profiler action defines `hook` itself (below the base)."""
    classes = {cls.__qualname__: cls for cls in _subclasses(Callback) + _subclasses(LightningModule)}
    cls = classes[re.match(r"\w+", name)[0]]
    base = Callback if issubclass(cls, Callback) else LightningModule
    return any(hook in vars(klass) for klass in cls.__mro__[: cls.__mro__.index(base)])


def _subclasses(cls: type) -> list[type]:
    return [cls, *(sub for direct in cls.__subclasses__() for sub in _subclasses(direct))]


def test_fit_trains_as_with_every_hook_and_calls_only_the_hooks_that_do_something(
    shrunk_recipe_args, run_cse, tmp_path, monkeypatch
):
    (tmp_path / "all").mkdir()
    (tmp_path / "used").mkdir()
    every, every_run = _fit(shrunk_recipe_args, run_cse, tmp_path / "all", monkeypatch, leave_out=False)
    used, used_run = _fit(shrunk_recipe_args, run_cse, tmp_path / "used", monkeypatch, leave_out=True)

    # The same training: every logged loss, learning rate and validation score, and the same final weights.
    assert _metrics(used_run) == _metrics(every_run)
    assert len(_metrics(used_run)) >= STEPS
    weights = [
        torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"] for run in (every_run, used_run)
    ]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])

    # Every hook that a callback or the module implements is called as often; the ones inherited unchanged (no-ops)
    # are not called at all.
    every_calls, used_calls = _per_batch_calls(every), _per_batch_calls(used)
    implemented = {call: count for call, count in every_calls.items() if _implements(*call)}
    assert implemented, "the run's callbacks implement per-batch hooks (throughput, checkpoints, the guard)"
    assert dict(used_calls) == implemented
    assert sum(every_calls.values()) - sum(used_calls.values()) >= STEPS * 10  # no-ops left out at every step


def test_a_profiler_the_user_chooses_is_kept(shrunk_recipe_args, run_cse, tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    args = shrunk_recipe_args("quickstart", "--trainer.profiler", "simple", max_steps=2, num_sanity_val_steps=0)
    with caplog.at_level(logging.INFO):
        assert run_cse(args).code == 0
    # Lightning's SimpleProfiler logs its table at the end, with the training steps it timed
    assert "FIT Profiler Report" in caplog.text
    assert re.search(r"run_training_batch\s*\|\s*[\d.e-]+\s*\|\s*2\s*\|", caplog.text)


def test_a_hook_set_on_the_object_itself_is_kept():
    class Counting(Callback):
        def on_train_batch_end(self, *args) -> None:
            pass

    callback = Counting()
    callback.on_before_backward = print  # set on the object: not the class's inherited no-op
    lightning_overhead.leave_out_unused_hooks([callback], LightningModule())
    assert callback.on_before_backward is print
    assert callable(callback.on_train_batch_end)
    assert callback.on_after_backward is None and callback.on_train_batch_start is None


def test_the_hook_name_is_a_plain_attribute_and_other_attributes_register_as_before():
    class Module(PlainHookName, LightningModule):
        pass

    module = Module()
    module._current_fx_name = "training_step"
    assert module._current_fx_name == "training_step"
    assert "_current_fx_name" not in {*module._parameters, *module._modules, *module._buffers}
    module.layer = nn.Linear(2, 3)
    module.scale = nn.Parameter(torch.ones(1))
    module.register_buffer("offset", torch.zeros(1))
    assert set(module.state_dict()) == {"layer.weight", "layer.bias", "scale", "offset"}
    module.layer = None  # nn.Module's rule: a registered submodule set to None stays registered, as None
    assert "layer" in module._modules and module._modules["layer"] is None
