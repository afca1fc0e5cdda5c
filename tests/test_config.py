from pathlib import Path

import pytest

from recforge.config import ExperimentConfig, config_from_dict, load_config, parse_override
from recforge.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]

MINIMAL = """\
name: tiny
data:
  name: ml-100k
model:
  name: lightgcn
  dim: 16
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "experiment.yaml"
    path.write_text(text)
    return path


def test_defaults_fill_every_section(tmp_path):
    config = load_config(write(tmp_path, MINIMAL))
    assert config.model.name == "lightgcn"
    assert config.model.dim == 16
    assert config.model.num_layers == 3
    assert config.objective.weights == {"bpr": 1.0, "l2": 1e-4}
    assert config.train.early_stopping_metric == "recall@20"
    assert config.run_dir == Path("runs/tiny")


def test_unknown_key_names_key_and_line(tmp_path):
    text = MINIMAL + "  num_layer: 2\n"  # typo of num_layers, on line 7
    with pytest.raises(ConfigError, match=r"experiment.yaml:7: model.num_layer: unknown key"):
        load_config(write(tmp_path, text))


def test_unknown_top_level_section(tmp_path):
    with pytest.raises(ConfigError, match=r"experiment.yaml:7: trainer: unknown key"):
        load_config(write(tmp_path, MINIMAL + "trainer: {epochs: 3}\n"))


def test_bad_value_names_field_and_line(tmp_path):
    text = MINIMAL.replace("dim: 16", "dim: -4")
    with pytest.raises(ConfigError, match=r"experiment.yaml:6: model.dim: Input should be greater than 0"):
        load_config(write(tmp_path, text))


def test_unknown_model_name_lists_choices(tmp_path):
    text = MINIMAL.replace("name: lightgcn", "name: lightgnc")
    with pytest.raises(ConfigError, match=r"experiment.yaml:5: model.*'lightgcn'"):
        load_config(write(tmp_path, text))


def test_overrides_apply_and_parse_yaml_values(tmp_path):
    config = load_config(
        write(tmp_path, MINIMAL),
        [
            "model.dim=128",
            "train.learning_rate=5e-3",
            "evaluation.ks=[5, 50]",
            "train.early_stopping_metric=ndcg@50",
        ],
    )
    assert config.model.dim == 128
    assert config.train.learning_rate == pytest.approx(5e-3)
    assert config.evaluation.ks == [5, 50]


def test_bad_override_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"override 'model.dimm=3': model.dimm: unknown key"):
        load_config(write(tmp_path, MINIMAL), ["model.dimm=3"])
    with pytest.raises(ConfigError, match=r"expected KEY.PATH=VALUE"):
        parse_override("model.dim")


def test_override_into_a_value_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"'model.dim' is a value, not a section"):
        load_config(write(tmp_path, MINIMAL), ["model.dim.x=3"])


def test_unknown_loss_term_lists_terms(tmp_path):
    text = MINIMAL + "objective:\n  weights: {bpr: 1.0, bprr: 0.1}\n"
    with pytest.raises(ConfigError, match=r"unknown loss terms \['bprr'\]"):
        load_config(write(tmp_path, text))


def test_stopping_metric_must_be_evaluated(tmp_path):
    with pytest.raises(ConfigError, match=r"early_stopping_metric 'recall@50' is not evaluated"):
        load_config(write(tmp_path, MINIMAL), ["train.early_stopping_metric=recall@50"])


def test_split_ratios_must_sum_to_one(tmp_path):
    with pytest.raises(ConfigError, match=r"data.split.ratios: .*summing to 1"):
        load_config(write(tmp_path, MINIMAL), ["data.split.ratios=[0.8, 0.1, 0.2]"])


def test_not_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"not valid YAML"):
        load_config(write(tmp_path, "name: [unclosed\n"))
    with pytest.raises(ConfigError, match=r"cannot read config"):
        load_config(tmp_path / "absent.yaml")


def test_yaml_round_trip():
    config = config_from_dict({"name": "x", "data": {"name": "gowalla"}, "model": {"name": "mf"}})
    import yaml

    again = ExperimentConfig.model_validate(yaml.safe_load(config.to_yaml()))
    assert again == config


@pytest.mark.parametrize("path", sorted((REPO / "configs").rglob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
    load_config(path)


def test_quickstart_config_matches_repository_copy():
    packaged = REPO / "src" / "recforge" / "configs" / "quickstart.yaml"
    assert packaged.read_text() == (REPO / "configs" / "ml-100k" / "lightgcn.yaml").read_text()
