"""The devices a test of what a GPU run does runs on (imported as `devices`: pytest puts tests/ on sys.path): the CPU
in every run of the suite, standing in for CUDA, and a CUDA GPU where torch sees one (`pytest -m gpu` runs those)."""

import pytest
import torch

ON_CUDA = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")]  # a test's marks
CPU_AND_CUDA = ["cpu", pytest.param("cuda", marks=ON_CUDA)]
