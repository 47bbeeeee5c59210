"""`cse.config.yaml_file`: its sections are the groups of keys `cse fit` has."""

import yaml

from cse.config.yaml_file import SECTIONS


def test_the_sections_are_the_groups_of_keys_cse_fit_prints(run_cse, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cse(["fit", "--config", "quickstart", "--print_config"])
    assert code == 0, err
    groups = [key for key, value in yaml.safe_load(out).items() if isinstance(value, dict)]
    assert sorted(groups) == sorted(SECTIONS)
