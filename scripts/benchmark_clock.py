"""The clock: cse and the floor alternate in blocks of `block` steps (cse, floor, cse, ...) so that both see the same
machine state, and each block is timed from the end of the other side's block, so that everything Lightning does
between steps counts against cse. On CUDA the clock waits for the GPU at block edges only."""

import time
from dataclasses import dataclass, field

import torch
from benchmark_floor import FloorLoop
from lightning.pytorch import Callback


@dataclass
class Timings:
    """Seconds of each side's timed blocks of `block` steps (after `warmup_blocks` untimed ones), and on CUDA the
    peak memory allocated during each side's timed blocks."""

    block: int
    warmup_blocks: int
    cuda: bool
    block_times: dict[str, list[float]] = field(default_factory=dict)
    peak_bytes: dict[str, int] = field(default_factory=dict)

    def now(self) -> float:
        """Seconds on the wall clock, once the GPU has run everything queued so far."""
        if self.cuda:
            torch.cuda.synchronize()  # the block's kernels are done: wall time is its whole cost
        return time.perf_counter()

    def record(self, side: str, seconds: float, blocks_done: int) -> None:
        """Keep the time of a side's block number `blocks_done` (from 1) unless it is a warm-up block."""
        if blocks_done > self.warmup_blocks:
            self.block_times.setdefault(side, []).append(seconds)
            if self.cuda:
                self.peak_bytes[side] = max(self.peak_bytes.get(side, 0), torch.cuda.max_memory_allocated())
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()


class Alternate(Callback):
    """After every `block` cse steps, `block` floor steps; records the time (and peak CUDA memory) of each block."""

    def __init__(self, floor: FloorLoop, timings: Timings) -> None:
        self.floor = floor
        self.timings = timings
        self._floor_end = 0.0
        self._steps = 0  # cse steps so far

    def on_train_start(self, trainer, pl_module) -> None:
        self._floor_end = self.timings.now()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._steps += 1
        block = self.timings.block
        if self._steps % block:
            return
        cse_end = self.timings.now()
        self.timings.record("cse", cse_end - self._floor_end, self._steps // block)
        for _ in range(block):
            self.floor.step()
        self._floor_end = self.timings.now()
        self.timings.record("floor", self._floor_end - cse_end, self._steps // block)
