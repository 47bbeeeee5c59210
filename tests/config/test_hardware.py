"""`cse.config.hardware`: the Trainer's accelerator and precision against the hardware at hand, with GPUs faked by
monkeypatching the few `torch.cuda` queries it makes (compute capabilities as NVIDIA lists them: T4 7.5, V100 7.0,
A100 8.0, H100 9.0)."""

import importlib.util
import logging

import pytest
import torch
from lightning.pytorch import Trainer
from lightning.pytorch.accelerators import MPSAccelerator

from cse.config.hardware import (
    check_gpu_present,
    check_launched_processes,
    precision_for_hardware,
    refused_hardware_settings,
)
from cse.errors import InputError, one_line


@pytest.fixture
def fake_gpus(monkeypatch):
    """Makes torch see the CUDA GPUs given as (name, (major, minor)) pairs, and Lightning Apple's MPS if `mps`."""

    def install(*gpus: tuple[str, tuple[int, int]], mps: bool = False) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: bool(gpus))
        monkeypatch.setattr(torch.cuda, "device_count", lambda: len(gpus))
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: gpus[index][0])
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index: gpus[index][1])
        monkeypatch.setattr(torch.version, "hip", None)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
        monkeypatch.setattr(MPSAccelerator, "is_available", staticmethod(lambda: mps))

    return install


def messages(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records]


@pytest.mark.parametrize("precision", ["16-mixed", "16-true", "16", 16])  # 16: how `--trainer.precision 16` parses
@pytest.mark.parametrize("accelerator", ["cpu", "auto"])
def test_fp16_without_a_gpu_runs_in_32_true_and_says_so(precision, accelerator, fake_gpus, caplog):
    fake_gpus()
    with caplog.at_level(logging.INFO):
        assert precision_for_hardware(precision, accelerator) == "32-true"
    assert messages(caplog) == [f"precision {precision} needs a CUDA GPU; running in 32-true"]


def test_bf16_on_a_gpu_without_bfloat16_tensor_cores_runs_as_asked_with_a_warning(fake_gpus, caplog):
    fake_gpus(("NVIDIA H100 80GB HBM3", (9, 0)), ("Tesla T4", (7, 5)))
    with caplog.at_level(logging.INFO):
        assert precision_for_hardware("bf16-mixed", "gpu") == "bf16-mixed"
    assert messages(caplog) == [
        "warning: trainer.precision: bf16-mixed on GPU 1 (Tesla T4, compute capability 7.5), which has no bfloat16 "
        "tensor cores: torch emulates bfloat16 there, slower than 16-mixed"
    ]


@pytest.mark.parametrize(
    ("precision", "accelerator", "gpu"),
    [
        ("bf16-mixed", "auto", ("NVIDIA A100-SXM4-40GB", (8, 0))),
        ("bf16-true", "cuda", ("NVIDIA H100 80GB HBM3", (9, 0))),
        ("16-mixed", "auto", ("Tesla V100-SXM2-16GB", (7, 0))),  # fp16 tensor cores: the paper's precision
        ("bf16-mixed", "cpu", ("Tesla T4", (7, 5))),  # CPU autocast, whatever GPU is there
        ("32-true", "auto", ("Tesla T4", (7, 5))),
    ],
)
def test_precisions_the_hardware_runs_natively_pass_silently(precision, accelerator, gpu, fake_gpus, caplog):
    fake_gpus(gpu)
    with caplog.at_level(logging.INFO):
        assert precision_for_hardware(precision, accelerator) == precision
    assert messages(caplog) == []


@pytest.mark.parametrize("accelerator", ["gpu", "cuda"])
@pytest.mark.parametrize(("cuda_build", "why"), [(None, "is built without CUDA"), ("13.0", "no GPU is visible")])
def test_a_gpu_asked_for_where_torch_sees_none_is_one_line_naming_the_key(
    accelerator, cuda_build, why, fake_gpus, monkeypatch
):
    fake_gpus()
    monkeypatch.setattr(torch.version, "cuda", cuda_build)
    with pytest.raises(InputError) as error:
        check_gpu_present(accelerator)
    assert str(error.value).startswith(f"trainer.accelerator: {accelerator}, but torch sees no CUDA GPU (")
    assert why in str(error.value)


@pytest.mark.parametrize(
    ("accelerator", "gpus"),
    [("gpu", [("NVIDIA H100 80GB HBM3", (9, 0))]), ("auto", []), ("cpu", []), ("cpu", [("Tesla T4", (7, 5))])],
)
def test_a_gpu_present_or_not_asked_for_passes(accelerator, gpus, fake_gpus):
    fake_gpus(*gpus)
    check_gpu_present(accelerator)


def test_gpu_on_a_mac_is_apples_mps_as_lightning_chooses_it(fake_gpus):
    fake_gpus(mps=True)
    check_gpu_present("gpu")
    with pytest.raises(InputError, match="^trainer.accelerator: cuda, but torch sees no CUDA GPU"):
        check_gpu_present("cuda")


@pytest.mark.parametrize("accelerator", ["gpu", "auto", "mps"])
def test_fp16_on_apples_mps_runs_in_32_true_and_says_so(accelerator, fake_gpus, caplog):
    fake_gpus(mps=True)  # Lightning runs `gpu` on MPS here, as `auto`
    with caplog.at_level(logging.INFO):
        assert precision_for_hardware("16-mixed", accelerator) == "32-true"
    assert messages(caplog) == ["precision 16-mixed needs a CUDA GPU; running in 32-true"]


@pytest.mark.parametrize("precision", ["64-true", "64", 64])
@pytest.mark.parametrize("accelerator", ["gpu", "auto", "mps"])
def test_float64_on_apples_mps_is_one_line(precision, accelerator, fake_gpus):
    fake_gpus(mps=True)
    with pytest.raises(InputError) as error:
        precision_for_hardware(precision, accelerator)
    assert str(error.value) == (
        f"trainer.precision: {precision}, but Apple's MPS (trainer.accelerator: {accelerator}) has no float64; use "
        "32-true, or trainer.accelerator cpu to train in float64"
    )


@pytest.mark.parametrize(("accelerator", "mps"), [("cpu", True), ("auto", False), ("cpu", False)])
def test_float64_off_apples_mps_runs_as_asked(accelerator, mps, fake_gpus, caplog):
    fake_gpus(mps=mps)
    with caplog.at_level(logging.INFO):
        assert precision_for_hardware("64-true", accelerator) == "64-true"
    assert messages(caplog) == []


LAUNCHERS = {  # the environment each launcher gives every process it starts: 2 nodes of 4 processes
    "torchrun": {"TORCHELASTIC_RUN_ID": "1", "WORLD_SIZE": "8", "RANK": "0", "LOCAL_RANK": "0", "GROUP_RANK": "0"},
    "SLURM": {"SLURM_NTASKS": "8", "SLURM_NTASKS_PER_NODE": "4", "SLURM_NNODES": "2", "SLURM_JOB_NAME": "cse"},
}


@pytest.fixture
def launched_by(monkeypatch):
    """Gives this process the environment of a process `launcher` started (and nothing of the other's)."""

    def install(launcher: str | None) -> None:
        for name in {name for variables in LAUNCHERS.values() for name in variables}:
            monkeypatch.delenv(name, raising=False)
        for name, value in LAUNCHERS.get(launcher, {}).items():
            monkeypatch.setenv(name, value)

    return install


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
@pytest.mark.parametrize(("devices", "num_nodes"), [(1, 2), (4, 1), (1, None), ([0, 1], 2)])
def test_processes_a_launcher_started_must_be_the_ones_the_settings_count(launcher, devices, num_nodes, launched_by):
    launched_by(launcher)
    expected = (devices if isinstance(devices, int) else len(devices)) * (num_nodes or 1)
    with pytest.raises(InputError) as error:
        check_launched_processes(devices, num_nodes)
    assert str(error.value) == (
        f"trainer.devices: {devices} × trainer.num_nodes {num_nodes or 1} is {expected} process(es), but {launcher} "
        "started 8: set trainer.devices to the processes per node, or each would train alone"
    )


@pytest.mark.parametrize(
    ("launcher", "devices", "num_nodes"),
    [("torchrun", 4, 2), ("SLURM", 4, 2), ("torchrun", [0, 1, 2, 3], 2), ("torchrun", "auto", 2), ("SLURM", -1, 2)]
    + [(None, 1, None), (None, 4, 1)],  # no launcher: Lightning starts what the settings say
)
def test_processes_the_settings_count_or_leave_to_lightning_pass(launcher, devices, num_nodes, launched_by):
    launched_by(launcher)
    check_launched_processes(devices, num_nodes)


@pytest.mark.parametrize("num_nodes", [2, 4])
def test_several_nodes_that_nothing_can_join_is_one_line(num_nodes, launched_by, monkeypatch):
    launched_by(None)
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(InputError) as error:
        check_launched_processes(1, num_nodes)
    assert str(error.value) == (
        f"trainer.num_nodes: {num_nodes}, but neither torchrun nor SLURM started this process and MASTER_ADDR is not "
        "set: it would wait for machines that never join; start it on every machine with torchrun or srun "
        "(docs/multi_gpu.md)"
    )


@pytest.mark.parametrize(("num_nodes", "master_addr"), [(2, "node0.example.com"), (1, None), (None, None)])
def test_one_node_or_lightnings_own_rendezvous_passes(num_nodes, master_addr, launched_by, monkeypatch):
    launched_by(None)
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    if master_addr is not None:
        monkeypatch.setenv("MASTER_ADDR", master_addr)
    check_launched_processes(1, num_nodes)


def test_a_recipe_under_torchrun_without_its_devices_is_one_line(
    launched_by, shrunk_recipe_args, run_cse, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    launched_by("torchrun")
    code, _, err = run_cse(shrunk_recipe_args("quickstart"))
    assert code == 2 and not list(tmp_path.iterdir())  # refused before the run folder is made
    assert err.strip().splitlines()[-1] == (
        "error: trainer.devices: 1 × trainer.num_nodes 1 is 1 process(es), but torchrun started 8: set "
        "trainer.devices to the processes per node, or each would train alone"
    )


def lightnings_refusal(**settings) -> str:
    """What Lightning's own Trainer raises for `settings`, on one line."""
    with pytest.raises(Exception) as error:
        Trainer(**settings, logger=False, enable_checkpointing=False)
    return one_line(error.value)


NO_TORCH_XLA = pytest.mark.skipif(importlib.util.find_spec("torch_xla") is not None, reason="torch_xla is installed")


@pytest.mark.parametrize(
    "settings",
    [
        {"accelerator": "cpu", "devices": -1},  # TypeError: -1 (every device) is for GPUs
        {"accelerator": "cpu", "strategy": "fsdp"},  # ValueError: FSDP needs a GPU
        {"accelerator": "hpu"},  # ValueError: not an accelerator Lightning has
        pytest.param({"accelerator": "tpu"}, marks=NO_TORCH_XLA),  # ModuleNotFoundError
    ],
)
def test_hardware_settings_lightning_refuses_are_one_line_after_the_settings(
    settings, run_cse, shrunk_recipe_args, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    overrides = [part for key, value in settings.items() for part in (f"--trainer.{key}", str(value))]
    code, _, err = run_cse(shrunk_recipe_args("quickstart", "--trainer.precision", "32-true", *overrides))
    assert code == 2 and not [path for path in tmp_path.rglob("*") if path.is_file()]  # no run folder, no cache
    given = {"accelerator": "auto", "devices": 1, "num_nodes": 1, "strategy": "auto", "precision": "32-true"} | settings
    prefix = ", ".join(f"trainer.{key} {value}" for key, value in given.items())
    assert err.strip().splitlines()[-1] == f"error: {prefix}: {lightnings_refusal(**settings)}"


def test_an_error_from_outside_lightnings_connector_is_left_as_it_is():
    try:
        int("not a number")
    except ValueError as error:
        assert refused_hardware_settings(error, {"devices": 1}) is None
