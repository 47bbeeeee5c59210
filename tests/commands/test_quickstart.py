"""The quickstart as a user runs it (`cse quickstart`), shortened, on the real all-MiniLM-L6-v2."""

import logging
from pathlib import Path

import pytest
import yaml
from transformers import AutoModel

from cse.cli import main
from cse.commands.quickstart import DATA_DIR


def test_quickstart_runs_offline_and_exports(minilm_dir, tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.chdir(tmp_path)
    lightning_logger = logging.getLogger("lightning.pytorch")  # does not propagate to the root logger
    monkeypatch.setattr(lightning_logger, "handlers", [*lightning_logger.handlers, caplog.handler])
    main(
        [
            "quickstart",
            "--trainer.max_steps",
            "2",
            "--trainer.val_check_interval",
            "2",
            "--data.batch_size",
            "16",
            "--trainer.num_sanity_val_steps",
            "0",
            "--trainer.enable_progress_bar",
            "false",
        ]
    )
    out, _ = capsys.readouterr()
    assert (tmp_path / DATA_DIR / "train.txt").is_file() and (tmp_path / DATA_DIR / "dev.tsv").is_file()
    assert "val at step 2: STS Spearman" in caplog.text
    exported = Path(out.strip().splitlines()[-1].split("best model: ")[-1])
    assert exported == tmp_path / "runs" / "quickstart" / "version_0" / "best_model"
    model, info = AutoModel.from_pretrained(exported, output_loading_info=True)
    assert not any(info.values()), info
    assert model.config.hidden_size == 384  # it really is MiniLM, not a stand-in


@pytest.mark.parametrize(
    ("options", "code"),
    [
        (["--print_config"], 0),
        (["--trainer.max_steps", "3", "--print_config=skip_unset"], 0),
        (["--help"], 0),
        (["-h"], 0),
        (["--trainer.max_steps", "many"], 2),
    ],
)
def test_options_that_only_print_or_fail_write_no_data(options, code, tmp_path, monkeypatch, run_cse):
    monkeypatch.chdir(tmp_path)
    result = run_cse(["quickstart", *options])
    assert result.code == code, result.err
    assert not (tmp_path / DATA_DIR).exists() and list(tmp_path.iterdir()) == []
    if any(option.startswith("--print_config") for option in options):
        printed = yaml.safe_load(result.out)
        assert (printed["data"]["train_file"], printed["data"]["dev_file"]) == (
            str(DATA_DIR / "train.txt"),
            str(DATA_DIR / "dev.tsv"),
        )


def test_a_file_where_the_data_folder_goes_is_one_line_and_kept(tmp_path, monkeypatch, run_cse):
    """It was mkdir's `error: cse-quickstart: File exists`, after the model had loaded."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / DATA_DIR).write_text("mine\n")
    code, out, err = run_cse(["quickstart", "--trainer.max_steps", "1", "--trainer.val_check_interval", "1"])
    assert code == 2 and err == (
        f"error: ./{DATA_DIR} is a file here, and cse quickstart writes its data into that folder; run it in another "
        "folder, or move the file\n"
    )
    assert list(tmp_path.iterdir()) == [tmp_path / DATA_DIR] and (tmp_path / DATA_DIR).read_text() == "mine\n"
