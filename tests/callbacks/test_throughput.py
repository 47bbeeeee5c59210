"""`ThroughputLog`'s whole-run figures, on a clock the test sets: steps, sentences and the share of validation."""

import re
from types import SimpleNamespace

import pytest
import torch

from cse.callbacks import throughput
from cse.callbacks.throughput import RunThroughput, ThroughputLog


class Clock:
    """`time.perf_counter` at the seconds the test sets."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_run_counts_its_steps_sentences_and_the_time_validation_took(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(throughput.time, "perf_counter", clock)
    logged = []  # (metrics, step) as the loggers got them
    logger = SimpleNamespace(log_metrics=lambda metrics, step: logged.append((metrics, step)))
    trainer = SimpleNamespace(global_step=0, log_every_n_steps=50, world_size=2, loggers=[logger])
    module = SimpleNamespace(device=torch.device("cpu"), log=lambda *args: None)
    batch = {"input_ids": torch.zeros(4, 3, 8, dtype=torch.long)}  # 4 triplets: 12 texts per process
    log = ThroughputLog()

    log.on_validation_start(trainer, module)  # the sanity check, before training starts: not counted
    clock.now = 5.0
    log.on_train_start(trainer, module)
    for start, validation in [(5.0, None), (7.0, (9.0, 12.0)), (12.5, (14.0, 20.0))]:
        clock.now = start
        log.on_train_batch_start(trainer, module, batch, 0)
        trainer.global_step += 1
        log.on_train_batch_end(trainer, module, None, batch, 0)
        if validation:  # from its start to the next batch (or the end), its checkpoint saves included
            clock.now = validation[0]
            log.on_validation_start(trainer, module)
            clock.now = validation[1]
    log.on_train_end(trainer, module)

    run = log.run
    assert (run.steps, run.sentences, run.seconds) == (3, 3 * 12 * 2, 15.0)
    assert run.validation_seconds == pytest.approx((12.5 - 9.0) + (20.0 - 14.0))
    # Each validation in the loggers' rows of its step (0-based: the validation after step 2 is in row 1).
    assert logged == [({"val/seconds": 12.5 - 9.0}, 1), ({"val/seconds": 20.0 - 14.0}, 2)]
    share = round(100 * 9.5 / 15.0)
    assert run.summary() == f"trained 3 steps in 15 s: 0.20 steps/s, 5 sentences/s, {share}% of the time validating"


@pytest.mark.parametrize(
    ("steps", "sentences", "seconds"),
    [(3, 2, 1000.0), (1, 64, 7200.0), (7, 112, 9.0), (5, 80, 3.0), (2, 1, 30_000.0)],
)
def test_a_slow_run_never_prints_a_rate_of_zero(steps, sentences, seconds):
    line = RunThroughput(steps, sentences, seconds, 0.0).summary()
    noun = "step" if steps == 1 else "steps"
    rates = re.fullmatch(rf"trained {steps} {noun} in \d+ s: ([\d.]+) steps/s, ([\d.,]+) sentences/s, 0% .*", line)
    assert rates, line
    for printed, rate, decimals in [(rates[1], steps / seconds, 2), (rates[2], sentences / seconds, 0)]:
        value = float(printed.replace(",", ""))
        assert value > 0, line
        # Two significant digits below 1 (within 5%), the usual decimals from 1 on.
        assert value == pytest.approx(rate, rel=0.05) if rate < 1 else value == round(rate, decimals)
