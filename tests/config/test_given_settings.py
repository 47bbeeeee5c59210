"""The model settings a command line gives, told from the defaults LightningCLI fills in."""

import shutil

from cse.config.given_settings import given_keys
from cse.config.recipes import resolve_config


def test_options_name_their_first_level_key_in_every_spelling():
    args = ["validate", "--model.temp", "0.1", "--model.pooler_type=avg", "--model.matryoshka_dims+=8"]
    args += ["--model.prompt_template.x", "1", "--data.batch_size", "2", "--modelx.temp", "3", "--ckpt_path", "a"]
    assert given_keys(args, "model") == {"temp", "pooler_type", "matryoshka_dims", "prompt_template"}


def test_config_files_and_inline_mappings_give_their_section_keys(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("trainer:\n  max_steps: 2\nmodel:\n  pooler_type: cls\n  mlp_only_train: true\n")
    (tmp_path / "model.yaml").write_text("temp: 0.1\n")
    args = ["--config", str(recipe), '--config={"model": {"do_mlm": true}}', "--model", str(tmp_path / "model.yaml")]
    assert given_keys(args, "model") == {"pooler_type", "mlp_only_train", "do_mlm", "temp"}
    assert given_keys(["--config", str(recipe)], "data") == set()


def test_what_cannot_be_read_gives_nothing(tmp_path):
    (tmp_path / "latin1.yaml").write_bytes(b"model:\n  pooler_type: caf\xe9\n")
    args = ["--config", str(tmp_path / "latin1.yaml"), "--config", "model: [unclosed", "--config"]
    assert given_keys(args, "model") == set()


def test_a_shipped_recipe_gives_nothing_a_copy_of_it_does(tmp_path):
    """A recipe's values are not the user's: `cse validate -c quickstart` did not ask for the hub id it names."""
    recipe = resolve_config("quickstart")
    copy = shutil.copy(recipe, tmp_path / "quickstart.yaml")
    assert given_keys(["--config", recipe, "--model.temp", "0.1"], "model") == {"temp"}
    assert given_keys([f"--config={copy}"], "model") == {"model_name_or_path", "pooler_type", "mlp_only_train"}
