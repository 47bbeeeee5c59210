"""`cse.callbacks.progress_bar`: the training bar updated at most every `interval` seconds, on a clock the test sets,
against a naive replay of the rule and Lightning's own bars (Rich's and tqdm's); and `cse fit` using it unless the
config says otherwise."""

import pytest
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import Callback, ProgressBar, RichProgressBar, TQDMProgressBar
from lightning.pytorch.callbacks.progress import tqdm_progress
from lightning.pytorch.demos.boring_classes import BoringModel

from cse.callbacks import progress_bar
from cse.callbacks.progress_bar import TimedRichProgressBar, TimedTQDMProgressBar, timed_progress_bar
from cse.commands.fit import _with_default

BATCHES = 10  # BoringModel's batches, limited to 10 per epoch
BARS = {"rich": (TimedRichProgressBar, RichProgressBar), "tqdm": (TimedTQDMProgressBar, TQDMProgressBar)}


class Clock:
    """`monotonic` for the bar: `step` seconds later at every reading."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.fixture
def shown(monkeypatch) -> list[int]:
    """The counts the training bar was updated with, in order, through each bar's own update function."""
    counts = []
    update_n, update = tqdm_progress._update_n, RichProgressBar._update

    def tqdm_updated(bar, value):
        if bar.desc.startswith("Epoch"):
            counts.append(value)
        update_n(bar, value)

    def rich_updated(bar, progress_bar_id, current, *args, **kwargs):
        if progress_bar_id is not None and progress_bar_id == bar.train_progress_bar_id:
            counts.append(current)
        update(bar, progress_bar_id, current, *args, **kwargs)

    monkeypatch.setattr(tqdm_progress, "_update_n", tqdm_updated)
    monkeypatch.setattr(RichProgressBar, "_update", rich_updated)
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
    """The rule written out: a batch is shown if `interval` has passed since the last shown one (the epoch's first
    always is), and the epoch's last batch at its end if it was not."""
    shown, last_shown, now = [], None, 0.0
    for batch in batches:
        now += step
        if last_shown is None or now - last_shown >= interval:
            shown.append(batch)
            last_shown = now
    return shown if shown[-1] == batches[-1] else [*shown, batches[-1]]


@pytest.mark.parametrize("kind", BARS)
@pytest.mark.parametrize("step", [0.2, 0.35, 1.0])
def test_the_training_bar_is_updated_as_the_interval_allows(shown, monkeypatch, kind, step):
    monkeypatch.setattr(progress_bar, "monotonic", Clock(step))
    _fit(BARS[kind][0](interval=0.5), max_epochs=2)
    expected = _replayed(0.5, step, list(range(1, BATCHES + 1)))
    assert shown == expected + expected  # each epoch starts over with its first batch
    assert len(expected) < BATCHES or step >= 0.5


@pytest.mark.parametrize("kind", BARS)
def test_a_run_stopped_mid_epoch_shows_its_last_batch(shown, monkeypatch, kind):
    monkeypatch.setattr(progress_bar, "monotonic", Clock(0.01))
    _fit(BARS[kind][0](interval=0.5), max_steps=7)
    assert shown == [1, 7]


@pytest.mark.parametrize("kind", BARS)
def test_interval_zero_updates_as_lightnings_bar(shown, kind):
    timed, lightning = BARS[kind]
    _fit(lightning(), max_epochs=2)
    by_lightning = list(shown)
    shown.clear()
    _fit(timed(interval=0), max_epochs=2)
    assert shown == by_lightning == list(range(1, BATCHES + 1)) * 2


def test_negative_interval_is_refused():
    with pytest.raises(ValueError, match="interval must be at least 0 seconds, got -1"):
        TimedTQDMProgressBar(interval=-1)


def test_the_bar_is_the_one_lightning_would_choose(monkeypatch):
    assert isinstance(timed_progress_bar(), TimedRichProgressBar)  # rich is installed with cse (through typer)

    def without_rich(bar, **kwargs):
        raise ModuleNotFoundError("`RichProgressBar` requires `rich` >= 10.2.2.")

    monkeypatch.setattr(RichProgressBar, "__init__", without_rich)
    assert isinstance(timed_progress_bar(), TimedTQDMProgressBar)


def test_the_trainers_callbacks_gain_it_unless_they_hold_a_bar():
    def _with_progress_bar(callbacks):
        return _with_default(callbacks, ProgressBar, timed_progress_bar)

    assert [type(callback) for callback in _with_progress_bar(None)] == [TimedRichProgressBar]
    own, plain = TQDMProgressBar(refresh_rate=5), Callback()
    assert _with_progress_bar([own]) == [own] and _with_progress_bar(own) == [own]
    assert [type(callback) for callback in _with_progress_bar(plain)] == [Callback, TimedRichProgressBar]


@pytest.mark.parametrize(
    "settings, expected",
    [
        ([], TimedRichProgressBar),
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
    monkeypatch.setattr(
        Callback, "on_fit_start", lambda callback, trainer, module: bars.append(trainer.progress_bar_callback)
    )
    code, _, err = run_cse(shrunk_recipe_args("quickstart", *settings, max_steps=2, enable_progress_bar=True))
    assert code == 0, err
    bar = bars[0] if bars else None
    assert type(bar) is expected if expected is not None else bar is None
    if expected is TQDMProgressBar:
        assert bar.refresh_rate == 5


@pytest.mark.parametrize("max_epochs", [-1, 3])
def test_the_rich_bar_names_the_last_epoch_only_when_there_is_one(max_epochs):
    timed, lightnings = TimedRichProgressBar(), RichProgressBar()
    for bar in (timed, lightnings):
        _fit(bar, max_epochs=max_epochs, max_steps=3)
    last_epoch = max_epochs - 1
    assert lightnings._get_train_description(0).strip() == f"Epoch 0/{last_epoch}"  # "Epoch 0/-2" for -1
    assert timed._get_train_description(0).strip() == ("Epoch 0" if max_epochs < 0 else f"Epoch 0/{last_epoch}")
