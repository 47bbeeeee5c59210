"""Host work that Lightning 2.6 does at every training step for nothing, left out.

A GPU step of unsupervised BERT-base is bound by kernel launches: the host's time per step is the step's time, so
each Python call in Lightning's loop costs training time. Three kinds of calls do nothing in a cse run:
- hooks a callback (or the LightningModule) inherits unchanged: Lightning calls six hooks of every callback at every
  training step (and six of the module), each a no-op unless overridden, each inside a profiler context with a name
  formatted for it. Lightning skips a hook that is not callable (`_call_callback_hooks`,
  `_call_lightning_module_hook`), so `leave_out_unused_hooks` sets the inherited ones to None on the object;
- the default `PassThroughProfiler`: about fifty `profile(name)` calls per step, each a generator-based context
  calling no-op `start` and `stop`; `NoProfiler` returns one shared do-nothing context;
- `LightningModule._current_fx_name`, set twice around every hook call, through `nn.Module.__setattr__`'s checks for
  parameters, modules and buffers (a dozen `isinstance` calls each); `PlainHookName` sets that string directly.

Side by side with the hand-written loop: `scripts/benchmark.py` (it builds its trainer the same way).
"""

import contextlib

from lightning.pytorch import Callback, LightningModule
from lightning.pytorch.profilers import PassThroughProfiler
from torch import nn

# The hooks of a training step. Not the evaluation ones: Lightning reads the module's `on_validation_batch_start`
# (and test, predict) signatures, and an evaluation batch is not bound by the host.
TRAINING_STEP_HOOKS = (
    "on_train_batch_start",
    "on_train_batch_end",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
)

_NOTHING = contextlib.nullcontext()


def leave_out_unused_hooks(callbacks: list[Callback], module: LightningModule) -> None:
    """Sets each of `TRAINING_STEP_HOOKS` that a callback's class inherits unchanged from `Callback` (the module's
    from `LightningModule`) to None on that object, so that Lightning skips it; a hook set on the object itself is
    kept. Call once every callback of the trainer is known."""
    for hooked in (*callbacks, module):
        base = Callback if isinstance(hooked, Callback) else LightningModule
        for name in TRAINING_STEP_HOOKS:
            inherited = getattr(type(hooked), name, None) is getattr(base, name)
            if inherited and name not in vars(hooked):
                setattr(hooked, name, None)


class NoProfiler(PassThroughProfiler):
    """Lightning's default profiler, records nothing, whose `profile(name)` is one shared do-nothing context."""

    def profile(self, action_name: str) -> contextlib.AbstractContextManager:  # type: ignore[override]
        return _NOTHING


class PlainHookName(nn.Module):
    """Mixed into a LightningModule (before it): `_current_fx_name`, the name of the hook Lightning is calling (a
    string or None, never a parameter, module or buffer), is set as a plain attribute."""

    def __setattr__(self, name: str, value: object) -> None:
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)
