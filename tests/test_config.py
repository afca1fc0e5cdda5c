from pathlib import Path

import pytest
import yaml

from recforge.config import ExperimentConfig, config_from_dict, load_config, parse_override
from recforge.errors import ConfigError
from recforge.objectives.term import UniformityParams

REPO = Path(__file__).resolve().parents[1]

MINIMAL = """\
name: tiny
data:
  name: ml-100k
model:
  name: lightgcn
  dim: 16
"""

WITH_TERMS = (
    MINIMAL
    + """\
objective:
  terms:
    bpr: {weight: 1.0}
    uniformity: {weight: 0.5, t: 2.0}
    l2: {weight: 1.0e-4}
"""
)
"""Lines 9-11 are the terms bpr, uniformity and l2."""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "experiment.yaml"
    path.write_text(text)
    return path


def weights(config: ExperimentConfig) -> dict[str, float]:
    return {name: params.weight for name, params in config.objective.terms.items()}


def test_defaults_fill_every_section(tmp_path):
    config = load_config(write(tmp_path, MINIMAL))
    assert config.model.name == "lightgcn"
    assert config.model.dim == 16
    assert config.model.num_layers == 3
    assert weights(config) == {"bpr": 1.0, "l2": 1e-4}
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


# -- objective.terms ------------------------------------------------------------------------------


def test_terms_keep_their_parameters_and_file_order(tmp_path):
    config = load_config(write(tmp_path, WITH_TERMS))
    assert list(config.objective.terms) == ["bpr", "uniformity", "l2"]  # the order they are summed in
    assert weights(config) == {"bpr": 1.0, "uniformity": 0.5, "l2": 1e-4}
    uniformity = config.objective.terms["uniformity"]
    assert isinstance(uniformity, UniformityParams)  # validated by the term's own settings class
    assert uniformity.t == 2.0


def test_a_term_parameter_default_applies_and_an_override_sets_it(tmp_path):
    text = WITH_TERMS.replace("uniformity: {weight: 0.5, t: 2.0}", "uniformity: {weight: 0.5}")
    assert load_config(write(tmp_path, text)).objective.terms["uniformity"].t == 2.0
    config = load_config(write(tmp_path, text), ["objective.terms.uniformity.t=3.5"])
    assert config.objective.terms["uniformity"].t == 3.5


def test_unknown_loss_term_names_file_line_and_lists_terms(tmp_path):
    text = WITH_TERMS.replace("uniformity: {", "uniformty: {")
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, text))
    message = str(error.value)
    assert "experiment.yaml:10: objective.terms.uniformty: unknown loss term; choose one of:" in message
    assert "uniformity" in message.split("choose one of:")[1]
    assert "bpr" in message.split("choose one of:")[1]


def test_unknown_loss_term_from_an_override_names_the_override(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"override 'objective.terms.bprr=\{weight: 1\}': objective.terms.bprr: unknown loss term",
    ):
        load_config(write(tmp_path, WITH_TERMS), ["objective.terms.bprr={weight: 1}"])


def test_unknown_term_parameter_lists_what_the_term_takes(tmp_path):
    text = WITH_TERMS.replace("t: 2.0", "tt: 2.0")
    with pytest.raises(
        ConfigError,
        match=r"experiment.yaml:10: objective.terms.uniformity.tt: term 'uniformity' has no parameter 'tt'; "
        r"it takes: weight, t",
    ):
        load_config(write(tmp_path, text))
    with pytest.raises(
        ConfigError, match=r"override 'objective.terms.bpr.margin=1': .*has no parameter 'margin'"
    ):
        load_config(write(tmp_path, WITH_TERMS), ["objective.terms.bpr.margin=1"])


def test_old_global_objective_settings_are_unknown_keys(tmp_path):
    with pytest.raises(
        ConfigError, match=r"override 'objective.temperature=0.2': objective.temperature: unknown key"
    ):
        load_config(write(tmp_path, WITH_TERMS), ["objective.temperature=0.2"])
    old_form = MINIMAL + "objective:\n  weights: {bpr: 1.0}\n"
    with pytest.raises(ConfigError, match=r"experiment.yaml:8: objective.weights: unknown key"):
        load_config(write(tmp_path, old_form))


@pytest.mark.parametrize("weight", ["-1.0", ".nan", ".inf"])
def test_negative_or_non_finite_weight_is_refused(tmp_path, weight):
    text = WITH_TERMS.replace("bpr: {weight: 1.0}", f"bpr: {{weight: {weight}}}")
    with pytest.raises(ConfigError, match=r"experiment.yaml:9: objective.terms.bpr.weight: "):
        load_config(write(tmp_path, text))


def test_negative_weight_from_an_override_names_the_override(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"override 'objective.terms.l2.weight=-1e-4': objective.terms.l2.weight: "
        r"Input should be greater than or equal to 0",
    ):
        load_config(write(tmp_path, WITH_TERMS), ["objective.terms.l2.weight=-1e-4"])


def test_a_term_without_weight_or_not_a_mapping_is_refused(tmp_path):
    text = WITH_TERMS.replace("bpr: {weight: 1.0}", "bpr: {}")
    with pytest.raises(
        ConfigError, match=r"experiment.yaml:9: objective.terms.bpr.weight: required key is missing"
    ):
        load_config(write(tmp_path, text))
    with pytest.raises(
        ConfigError, match=r"objective.terms.bpr: expected a mapping such as \{weight: 1.0\}, got 3"
    ):
        load_config(write(tmp_path, WITH_TERMS), ["objective.terms.bpr=3"])


def test_a_term_whose_needs_the_model_does_not_provide_is_refused(tmp_path):
    # uniformity reads the batch's query ids (the users), which a sequential model has not
    with pytest.raises(
        ConfigError,
        match=r"experiment.yaml:10: objective.terms.uniformity: term 'uniformity' needs \['query_ids'\], "
        r"which model 'sasrec' \(as configured\) does not provide",
    ):
        load_config(write(tmp_path, WITH_TERMS), ["model.name=sasrec"])
    with pytest.raises(
        ConfigError, match=r"term 'graph_alignment' needs \['graph_pairs'\], which model 'lightgcn'"
    ):
        load_config(write(tmp_path, MINIMAL), ["objective.terms={graph_alignment: {weight: 1}}"])


def test_null_drops_a_term(tmp_path):
    config = load_config(write(tmp_path, WITH_TERMS), ["objective.terms.uniformity=null"])
    assert list(config.objective.terms) == ["bpr", "l2"]
    # dropping the terms a model cannot feed (uniformity: query ids, l2: ego rows) makes it valid
    drops = ["objective.terms.uniformity=null", "objective.terms.l2=null"]
    config = load_config(write(tmp_path, WITH_TERMS), ["model.name=sasrec", *drops])
    assert config.model.name == "sasrec"
    assert list(config.objective.terms) == ["bpr"]
    # a null in the file drops the term too
    text = WITH_TERMS.replace("uniformity: {weight: 0.5, t: 2.0}", "uniformity: null")
    assert list(load_config(write(tmp_path, text)).objective.terms) == ["bpr", "l2"]


def test_dropping_every_term_is_refused(tmp_path):
    drops = [f"objective.terms.{name}=null" for name in ("bpr", "uniformity", "l2")]
    with pytest.raises(ConfigError, match=r"objective.terms: at least one loss term is needed"):
        load_config(write(tmp_path, WITH_TERMS), drops)


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
    config = config_from_dict(
        {
            "name": "x",
            "data": {"name": "gowalla"},
            "model": {"name": "mf"},
            "objective": {"terms": {"bpr": {"weight": 1}, "uniformity": {"weight": 0.5, "t": 3}}},
        }
    )
    text = config.to_yaml()
    assert yaml.safe_load(text)["objective"] == {
        "terms": {"bpr": {"weight": 1.0}, "uniformity": {"weight": 0.5, "t": 3.0}},
        "teacher": None,
    }
    again = ExperimentConfig.model_validate(yaml.safe_load(text))
    assert again == config
    assert list(again.objective.terms) == ["bpr", "uniformity"]


@pytest.mark.parametrize("path", sorted((REPO / "configs").rglob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
    load_config(path)


def test_quickstart_config_matches_repository_copy():
    packaged = REPO / "src" / "recforge" / "configs" / "quickstart.yaml"
    assert packaged.read_text() == (REPO / "configs" / "ml-100k" / "lightgcn.yaml").read_text()
