"""Fixtures of the model tests."""

from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoTokenizer, BertForMaskedLM


@pytest.fixture(scope="session")
def tiny_mlm_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT saved as BertForMaskedLM, with a (random) MLM head, for SimCSE's auxiliary MLM loss."""
    directory = tmp_path_factory.mktemp("tiny-mlm")
    torch.manual_seed(1)
    BertForMaskedLM(AutoConfig.from_pretrained(tiny_model_dir)).save_pretrained(directory)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(directory)
    return directory
