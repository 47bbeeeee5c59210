"""A GPU out of memory ends `cse` in one line naming the setting to lower for the step that failed: torch's
`OutOfMemoryError` raised where a GPU would raise it (the encoder's forward), on the CPU, with torch's message as its
CUDA allocator writes it."""

import pytest
import torch

from cse.models.encoder import SentenceEncoder
from cse.out_of_memory import EVALUATION_ADVICE, INFERENCE_ADVICE, TRAINING_ADVICE

TORCH_MESSAGE = (
    "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 15.56 GiB of which 1.19 GiB is "
    "free. Including non-PyTorch memory, this process has 14.36 GiB memory in use. Of the allocated memory 13.90 GiB "
    "is allocated by PyTorch, and 301.23 MiB is reserved by PyTorch but unallocated. If reserved but unallocated "
    "memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See "
    "documentation for Memory Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)"
)
ALLOCATION = (
    "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 15.56 GiB of which 1.19 GiB is free"
)


@pytest.fixture
def gpu_full_when(monkeypatch):
    """Makes the encoder's forward raise torch's out-of-memory error in training mode, or in evaluation mode."""

    def install(training: bool, after: int = 0) -> None:
        """Raise at the first forward in that mode after `after` of them ran."""
        forward = SentenceEncoder.forward
        ran = []

        def forward_until_full(encoder, *args, **kwargs):
            if encoder.training == training:
                if len(ran) == after:
                    raise torch.OutOfMemoryError(TORCH_MESSAGE)
                ran.append(True)
            return forward(encoder, *args, **kwargs)

        monkeypatch.setattr(SentenceEncoder, "forward", forward_until_full)

    return install


@pytest.mark.parametrize(("training", "advice"), [(True, TRAINING_ADVICE), (False, EVALUATION_ADVICE)])
def test_fit_out_of_memory_is_one_line_with_the_setting_of_the_step_that_failed(
    training, advice, gpu_full_when, shrunk_recipe_args, run_cse, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    gpu_full_when(training)
    code, _, err = run_cse(shrunk_recipe_args("quickstart", max_steps=2))
    assert code == 1
    assert err.strip().splitlines()[-1] == f"error: out of GPU memory in cse fit ({ALLOCATION}): {advice}"
    assert "Traceback" not in err


def test_the_fits_of_a_sweep_get_the_training_settings(
    gpu_full_when, shrunk_recipe_args, run_cse, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # the data's cache folder is relative
    gpu_full_when(training=True)
    fit_args = shrunk_recipe_args("quickstart", max_steps=2)[1:]  # without `fit`
    code, _, err = run_cse(["sweep", "--seeds", "1", "--sweep-dir", str(tmp_path / "sweep"), *fit_args])
    assert code == 1
    assert err.strip().splitlines()[-1] == f"error: out of GPU memory in cse sweep ({ALLOCATION}): {TRAINING_ADVICE}"


def test_the_checkpoints_written_before_running_out_of_memory_stay_good(
    gpu_full_when, shrunk_recipe_args, run_cse, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    gpu_full_when(training=True, after=3)  # steps 1-3 train (validations after steps 2), step 4 runs out
    code, _, err = run_cse(shrunk_recipe_args("quickstart", "--periodic_checkpoint.every_n_train_steps", "3"))
    assert code == 1, err
    (run_dir,) = (tmp_path / "runs" / "quickstart").iterdir()
    files = sorted(path.name for path in (run_dir / "checkpoints").iterdir())
    assert files == ["best-step=2.ckpt", "last.ckpt"]  # no temporary file beside them
    steps = [torch.load(run_dir / "checkpoints" / name, weights_only=True)["global_step"] for name in files]
    assert steps == [2, 3]


def test_encode_out_of_memory_is_one_line_naming_batch_size(gpu_full_when, tiny_model_dir, run_cse, tmp_path):
    gpu_full_when(training=False)
    (tmp_path / "in.txt").write_text("a man is playing a guitar\n")
    code, _, err = run_cse(
        ["encode", str(tiny_model_dir), str(tmp_path / "in.txt"), str(tmp_path / "out.npy"), "--pooler", "avg"]
    )
    assert code == 1
    assert err.strip().splitlines()[-1] == f"error: out of GPU memory in cse encode ({ALLOCATION}): {INFERENCE_ADVICE}"
    assert "Traceback" not in err
    assert not (tmp_path / "out.npy").exists()


def test_a_message_without_the_allocators_figures_keeps_its_first_sentence(run_cse, monkeypatch):
    def encode_command(argv):
        raise torch.OutOfMemoryError("MPS backend out of memory (MPS allocated: 17.00 GB). Tried to allocate 1 GB.")

    monkeypatch.setattr("cse.commands.encode.run", encode_command)
    code, _, err = run_cse(["encode", "model", "in.txt", "out.npy"])
    assert (code, err.strip()) == (
        1,
        f"error: out of GPU memory in cse encode (MPS backend out of memory (MPS allocated: 17.00 GB)): "
        f"{INFERENCE_ADVICE}",
    )
