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
