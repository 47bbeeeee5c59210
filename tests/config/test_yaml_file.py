"""`cse.config.yaml_file`: its sections are the groups of keys `cse fit` has."""

import pytest
import yaml

from cse.config.yaml_file import SECTIONS, check_config_file
from cse.errors import InputError


def test_the_sections_are_the_groups_of_keys_cse_fit_prints(run_cse, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cse(["fit", "--config", "quickstart", "--print_config"])
    assert code == 0, err
    groups = [key for key, value in yaml.safe_load(out).items() if isinstance(value, dict)]
    assert sorted(groups) == sorted(SECTIONS)


def test_a_config_not_in_utf8_names_the_line_and_column_of_its_first_bad_byte(tmp_path):
    config = tmp_path / "latin1.yaml"
    text = "trainer:\n  max_steps: 2\nmodel:\n  prompt_template: 'Cette phrase : [X] signifie [MASK].' # é\n"
    config.write_bytes(text.encode("latin-1"))
    line, column = 4, text.splitlines()[3].index("é") + 1  # all ASCII before it: its byte's column too
    with pytest.raises(InputError) as error:
        check_config_file(str(config))
    assert str(error.value) == f"--config {config} line {line}: not valid UTF-8 (byte 0xe9 at column {column})"


def test_a_section_given_a_string_is_read_from_that_file_beside_the_config_or_refused(run_cse, tmp_path, monkeypatch):
    """jsonargparse reads such a section from the file; a string that names none was "Unable to load config 'abc'"."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "data.yaml").write_text("batch_size: 8\n")
    (tmp_path / "runs" / "run.yaml").write_text("model:\n  temp: 0.1\ndata: data.yaml\n")
    code, out, err = run_cse(["fit", "--config", "runs/run.yaml", "--print_config"])
    assert code == 0, err
    assert yaml.safe_load(out)["data"]["batch_size"] == 8
    (tmp_path / "dat.yaml").write_text("batch_size: 8\n")  # here, not beside the config: jsonargparse does not look
    (tmp_path / "runs" / "typo.yaml").write_text("model:\n  temp: 0.1\ndata: dat.yaml\n")
    code, _, err = run_cse(["fit", "--config", "runs/typo.yaml", "--print_config"])
    assert code == 2 and err.strip().splitlines()[-1] == (
        "error: --config runs/typo.yaml line 3: data: 'dat.yaml' is no file beside typo.yaml (a section given a string "
        "is read from that YAML file); give its settings as indented `key: value` lines below `data:`"
    )
