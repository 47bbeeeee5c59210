"""Fixtures of the encoder-family tests: each family's tiny model directory, built once per session on first use,
triplets for supervised training and a SentEval folder for `cse eval`, all from the generated data."""

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from tiny_families import FAMILIES, corpus_lines

from cse.data.synthetic import QuickstartFiles


@pytest.fixture(scope="session")
def family_model_dir(tiny_data: QuickstartFiles, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """`(family name) -> directory` of its tiny random `*ForMaskedLM` and tokenizer, each built once per session.

    Tests must not modify the directories (copy them first).
    """
    built: dict[str, Path] = {}

    def model_dir(name: str) -> Path:
        if name not in built:
            torch.manual_seed(0)
            tokenizer, model = FAMILIES[name].build(corpus_lines(tiny_data))
            directory = tmp_path_factory.mktemp(f"tiny-{name}")
            model.save_pretrained(directory)
            tokenizer.save_pretrained(directory)
            built[name] = directory
        return built[name]

    return model_dir


@pytest.fixture(scope="session")
def triplets_file(tiny_data: QuickstartFiles, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """NLI-like triplets (`sent0,sent1,hard_neg`): the positive is the anchor lowercased, the hard negative another
    sentence of the corpus."""
    lines = [line.replace(",", "") for line in Path(tiny_data.train_file).read_text().splitlines()]
    rows = [f"{a},{a.lower()},{b}" for a, b in zip(lines[:120], lines[120:240], strict=True)]
    path = tmp_path_factory.mktemp("triplets") / "triplets.csv"
    path.write_text("sent0,sent1,hard_neg\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="session")
def senteval_dir(tiny_data: QuickstartFiles, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SentEval's `downstream` layout holding STS-B dev only: the generated dev set (`cse eval --mode dev`)."""
    root = tmp_path_factory.mktemp("senteval")
    stsb = root / "STS" / "STSBenchmark"
    stsb.mkdir(parents=True)
    shutil.copy(tiny_data.dev_file, stsb / "sts-dev.csv")
    return root
