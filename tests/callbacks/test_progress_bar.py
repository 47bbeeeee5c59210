"""`TimedProgressBar`: the training bar redrawn at most every `interval` seconds, on a clock the test sets, against
a naive replay of the rule and Lightning's own bar; and `cse fit` using it unless the config says otherwise."""

import pytest
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import Callback, TQDMProgressBar
from lightning.pytorch.callbacks.progress import tqdm_progress
from lightning.pytorch.demos.boring_classes import BoringModel

from cse.callbacks import progress_bar
from cse.callbacks.progress_bar import TimedProgressBar
from cse.commands.fit import _with_progress_bar

BATCHES = 10  # BoringModel's 64 samples in batches of 2, limited to 10 per epoch


class Clock:
    """`monotonic` for the bar: `step` seconds later at every reading."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.fixture
def drawn(monkeypatch) -> list[int]:
    """The counts the training bar was redrawn with, in order (Lightning redraws through `_update_n`)."""
    counts = []
    update = tqdm_progress._update_n

    def recorded(bar, value):
        if bar.desc.startswith("Epoch"):
            counts.append(value)
        update(bar, value)

    monkeypatch.setattr(tqdm_progress, "_update_n", recorded)
    return counts


def _fit(bar, **options) -> None:
    trainer = Trainer(
        callbacks=[bar],
        limit_train_batches=BATCHES,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        accelerator="cpu",
        **options,
    )
    trainer.fit(BoringModel())


def _replayed(interval: float, step: float, batches: list[int]) -> list[int]:
    """The rule written out: a batch is drawn if `interval` has passed since the last drawn one (the epoch's first
    always is), and the epoch's last batch at its end if it was not."""
    drawn, last_drawn, now = [], None, 0.0
    for batch in batches:
        now += step
        if last_drawn is None or now - last_drawn >= interval:
            drawn.append(batch)
            last_drawn = now
    return drawn if drawn[-1] == batches[-1] else [*drawn, batches[-1]]


@pytest.mark.parametrize("step", [0.2, 0.35, 1.0])
def test_the_training_bar_is_redrawn_as_the_interval_allows(drawn, monkeypatch, step):
    monkeypatch.setattr(progress_bar, "monotonic", Clock(step))
    _fit(TimedProgressBar(interval=0.5), max_epochs=2)
    epoch = list(range(1, BATCHES + 1))
    expected = _replayed(0.5, step, epoch)
    assert drawn == expected + expected  # each epoch starts over with its first batch
    assert len(expected) < BATCHES or step >= 0.5


def test_a_run_stopped_mid_epoch_shows_its_last_batch(drawn, monkeypatch):
    monkeypatch.setattr(progress_bar, "monotonic", Clock(0.01))
    _fit(TimedProgressBar(interval=0.5), max_steps=7)
    assert drawn == [1, 7]


def test_interval_zero_draws_what_lightnings_bar_draws(drawn):
    _fit(TQDMProgressBar(), max_epochs=2)
    lightning = list(drawn)
    drawn.clear()
    _fit(TimedProgressBar(interval=0), max_epochs=2)
    assert drawn == lightning == list(range(1, BATCHES + 1)) * 2


def test_negative_interval_is_refused():
    with pytest.raises(ValueError, match="interval must be at least 0 seconds, got -1"):
        TimedProgressBar(interval=-1)


def test_the_trainers_callbacks_gain_it_unless_they_hold_a_bar():
    assert [type(callback) for callback in _with_progress_bar(None)] == [TimedProgressBar]
    own, plain = TQDMProgressBar(refresh_rate=5), Callback()
    assert _with_progress_bar([own]) == [own] and _with_progress_bar(own) == [own]
    assert [type(callback) for callback in _with_progress_bar(plain)] == [Callback, TimedProgressBar]


@pytest.mark.parametrize(
    "settings, expected",
    [
        ([], TimedProgressBar),
        (
            ["--trainer.callbacks+=lightning.pytorch.callbacks.TQDMProgressBar", "--trainer.callbacks.refresh_rate=5"],
            TQDMProgressBar,
        ),
        (["--trainer.enable_progress_bar=false"], None),
    ],
    ids=["default", "configured", "off"],
)
def test_cse_fit_bar(settings, expected, shrunk_recipe_args, run_cse, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bars = []
    start = TQDMProgressBar.on_train_start
    monkeypatch.setattr(
        TQDMProgressBar,
        "on_train_start",
        lambda bar, trainer, *args: (
            bars.append((type(bar), bar.refresh_rate, trainer.progress_bar_callback is bar)),
            start(bar, trainer, *args),
        ),
    )
    code, _, err = run_cse(shrunk_recipe_args("quickstart", *settings, max_steps=2, enable_progress_bar=True))
    assert code == 0, err
    assert bars == ([] if expected is None else [(expected, 5 if expected is TQDMProgressBar else 1, True)])
