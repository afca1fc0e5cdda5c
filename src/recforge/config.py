"""Typed experiment configuration: YAML in, validated by pydantic, with ``-o key=value`` overrides.

This is the only place that turns text into arguments: the trainer unpacks the validated models
into explicit constructor arguments, so encoders and loss terms never see a config object. Unknown
keys are errors that name the key and its line in the YAML file, never silently ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from recforge.errors import ConfigError

MetricName = Literal["recall", "ndcg", "hit", "precision", "mrr", "map", "coverage"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FilterConfig(_Strict):
    """Cleaning applied after reading, before splitting; each step reports what it removed."""

    deduplicate: bool = True
    min_user_interactions: Annotated[int, Field(ge=0)] = 0
    min_item_interactions: Annotated[int, Field(ge=0)] = 0


class SplitConfig(_Strict):
    """How train/valid/test are made. ``given`` uses the source's own split files."""

    protocol: Literal["given", "random", "leave_one_out", "temporal"] = "random"
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    valid_ratio: Annotated[float, Field(gt=0, lt=1)] | None = None
    seed: int | None = None

    @field_validator("ratios")
    @classmethod
    def _ratios_sum_to_one(cls, ratios: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(r < 0 for r in ratios) or abs(sum(ratios) - 1.0) > 1e-6:
            raise ValueError(f"must be three non-negative fractions summing to 1, got {list(ratios)}")
        return ratios


class DataConfig(_Strict):
    name: str = Field(description="a registered dataset name (see `recforge data info`) or a path")
    root: Path | None = None
    format: str | None = None
    options: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="reader keyword arguments, e.g. {user: userId, item: movieId, timestamp: ts} for a CSV",
    )
    filter: FilterConfig = FilterConfig()
    split: SplitConfig = SplitConfig()


class MFConfig(_Strict):
    name: Literal["mf"]
    dim: Annotated[int, Field(gt=0)] = 64


class LightGCNConfig(_Strict):
    name: Literal["lightgcn"]
    dim: Annotated[int, Field(gt=0)] = 64
    num_layers: Annotated[int, Field(ge=0)] = 3


class SASRecConfig(_Strict):
    name: Literal["sasrec"]
    dim: Annotated[int, Field(gt=0)] = 64
    max_length: Annotated[int, Field(gt=0)] = 50
    num_layers: Annotated[int, Field(gt=0)] = 2
    num_heads: Annotated[int, Field(gt=0)] = 2
    inner_dim: Annotated[int, Field(gt=0)] = 256
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.5
    attention_dropout: Annotated[float, Field(ge=0, lt=1)] = 0.5


class GRU4RecConfig(_Strict):
    name: Literal["gru4rec"]
    dim: Annotated[int, Field(gt=0)] = 64
    hidden_dim: Annotated[int, Field(gt=0)] = 128
    num_layers: Annotated[int, Field(gt=0)] = 1
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.3
    max_length: Annotated[int, Field(gt=0)] = 50


class GSAUConfig(_Strict):
    """A LightGCN and a SASRec sharing one item table (see :class:`recforge.models.gsau.GSAU`)."""

    name: Literal["gsau"]
    dim: Annotated[int, Field(gt=0)] = 64
    graph_layers: Annotated[int, Field(ge=0)] = 2
    max_length: Annotated[int, Field(gt=0)] = 50
    num_layers: Annotated[int, Field(gt=0)] = 2
    num_heads: Annotated[int, Field(gt=0)] = 2
    inner_dim: Annotated[int, Field(gt=0)] = 256
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.5
    attention_dropout: Annotated[float, Field(ge=0, lt=1)] = 0.5
    shared_embeddings: bool = True
    score_with: Literal["sequence", "graph", "both"] = Field(
        "sequence",
        description="which encoder ranks items: the sequence state against the item table (the "
        "paper's choice), the LightGCN user against LightGCN items, or both (sum of cosines)",
    )


class GATConfig(_Strict):
    name: Literal["gat"]
    dim: Annotated[int, Field(gt=0)] = 64
    num_layers: Annotated[int, Field(gt=0)] = 2
    num_heads: Annotated[int, Field(gt=0)] = 2


class RGTConfig(_Strict):
    """Residual Graph Transformer (see :class:`recforge.models.rgt.RGT`); every part is a switch."""

    name: Literal["rgt"]
    dim: Annotated[int, Field(gt=0)] = 64
    num_layers: Annotated[int, Field(ge=0)] = 2
    num_heads: Annotated[int, Field(gt=0)] = 2
    anchors: Annotated[int, Field(ge=1, description="anchor-set size A")] = 32
    anchor_cutoff: Annotated[int, Field(ge=1, description="hop cut-off q of the anchor distances")] = 4
    anchor_resample_every: Annotated[
        int, Field(ge=0, description="epochs between anchor resamplings; 0 keeps the first set")
    ] = 10
    position_encoding: bool = True
    masked_autoencoding: bool = True
    rationale_ratio: Annotated[
        float, Field(gt=0, lt=1, description="ρ_R: share of edges kept as rationale")
    ] = 0.9
    rationale_every: Annotated[
        int, Field(ge=1, description="training steps between rationale resamplings")
    ] = 10
    extra_pair_ratio: Annotated[
        float, Field(ge=0, lt=1, description="sampled non-edges attended to, as a share of |E|")
    ] = 0.01
    gumbel_temperature: Annotated[float, Field(gt=0)] = 1.0


ModelConfig = Annotated[
    MFConfig | LightGCNConfig | GATConfig | SASRecConfig | GRU4RecConfig | GSAUConfig | RGTConfig,
    Field(discriminator="name"),
]
SEQUENTIAL_MODELS = ("sasrec", "gru4rec")
GRAPH_SEQUENCE_MODELS = ("gsau",)
RATIONALE_MODELS = ("rgt",)
MODEL_NAMES = ("mf", "lightgcn", "gat", *SEQUENTIAL_MODELS, *GRAPH_SEQUENCE_MODELS, *RATIONALE_MODELS)


def terms_of_model(model: str) -> frozenset[str]:
    """The loss-term names a model of this name trains with."""
    from recforge.objectives.batch_terms import TERMS
    from recforge.objectives.graph_sequence_terms import GRAPH_SEQUENCE_TERMS
    from recforge.objectives.sequence_terms import SEQUENCE_TERMS

    if model in SEQUENTIAL_MODELS:
        return frozenset(SEQUENCE_TERMS)
    if model in GRAPH_SEQUENCE_MODELS:
        return frozenset(GRAPH_SEQUENCE_TERMS)
    if model in RATIONALE_MODELS:
        from recforge.objectives.rationale_terms import RATIONALE_TERMS

        return frozenset(TERMS) | frozenset(RATIONALE_TERMS)
    return frozenset(TERMS)


class ObjectiveConfig(_Strict):
    """Named loss terms and their weights (DESIGN idea 2): total = sum_k weight_k * term_k."""

    weights: dict[str, float] = Field(default_factory=lambda: {"bpr": 1.0, "l2": 1e-4})
    temperature: Annotated[float, Field(gt=0)] = 0.2
    alignment_alpha: Annotated[float, Field(gt=0)] = 2.0
    uniformity_t: Annotated[float, Field(gt=0)] = 2.0
    dros_beta: Annotated[float, Field(gt=0)] = 1.0
    dros_exponent: Annotated[float, Field(ge=0)] = 0.05

    @field_validator("weights")
    @classmethod
    def _known_terms(cls, weights: dict[str, float]) -> dict[str, float]:
        known = frozenset().union(*(terms_of_model(name) for name in MODEL_NAMES))
        unknown = sorted(set(weights) - known)
        if unknown:
            raise ValueError(f"unknown loss terms {unknown}; choose from {sorted(known)}")
        if not weights:
            raise ValueError("at least one loss term needs a weight")
        return weights


class TrainConfig(_Strict):
    epochs: Annotated[int, Field(gt=0)] = 100
    batch_size: Annotated[int, Field(gt=0)] = 2048
    learning_rate: Annotated[float, Field(gt=0)] = 1e-3
    lr_schedule: Literal["constant", "cosine"] = "constant"
    num_negatives: Annotated[int, Field(gt=0)] = 1
    early_stopping_metric: str = "recall@20"
    patience: Annotated[int, Field(gt=0)] = 10
    eval_every: Annotated[int, Field(gt=0)] = 1
    max_train_seconds: Annotated[float, Field(gt=0)] | None = None
    device: str = "auto"
    num_threads: Annotated[int, Field(gt=0)] | None = None


class EvaluationConfig(_Strict):
    ks: list[Annotated[int, Field(gt=0)]] = Field(default_factory=lambda: [10, 20])
    metrics: list[MetricName] = Field(default_factory=lambda: list(get_args(MetricName)))
    batch_size: Annotated[int, Field(gt=0)] = 1024
    activity_slices: list[Annotated[int, Field(ge=0)]] = Field(default_factory=lambda: [5, 20])


class ExperimentConfig(_Strict):
    """One experiment: data → split → model → objective → training → evaluation."""

    name: str
    seed: int = 2020
    output_dir: Path | None = None
    data: DataConfig
    model: ModelConfig
    objective: ObjectiveConfig = ObjectiveConfig()
    train: TrainConfig = TrainConfig()
    evaluation: EvaluationConfig = EvaluationConfig()

    @model_validator(mode="after")
    def _terms_fit_the_model(self) -> ExperimentConfig:
        allowed = terms_of_model(self.model.name)
        misfits = sorted(set(self.objective.weights) - set(allowed))
        if misfits:
            raise ValueError(
                f"objective.weights: model '{self.model.name}' trains with the terms {sorted(allowed)}, "
                f"not {misfits}"
            )
        return self

    @model_validator(mode="after")
    def _reconstruction_needs_masking(self) -> ExperimentConfig:
        if (
            isinstance(self.model, RGTConfig)
            and not self.model.masked_autoencoding
            and "reconstruction" in self.objective.weights
        ):
            raise ValueError(
                "objective.weights.reconstruction: the reconstruction term needs "
                "model.masked_autoencoding: true (drop the term for the ablation without it)"
            )
        return self

    @model_validator(mode="after")
    def _stopping_metric_is_evaluated(self) -> ExperimentConfig:
        metric = self.train.early_stopping_metric
        name, _, k = metric.partition("@")
        if name not in self.evaluation.metrics or not k.isdigit() or int(k) not in self.evaluation.ks:
            choices = [f"{m}@{k}" for m in self.evaluation.metrics for k in self.evaluation.ks]
            raise ValueError(
                f"train.early_stopping_metric '{metric}' is not evaluated; choose from {choices}"
            )
        return self

    @property
    def run_dir(self) -> Path:
        return self.output_dir if self.output_dir is not None else Path("runs") / self.name

    @property
    def split_seed(self) -> int:
        return self.seed if self.data.split.seed is None else self.data.split.seed

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> ExperimentConfig:
    """Read a YAML experiment file, apply ``key.path=value`` overrides, validate.

    Errors name the file and line of the offending key (or the override that introduced it).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config ({error.strerror})") from error
    try:
        raw = yaml.safe_load(text)
        lines = _key_lines(yaml.compose(text))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    return config_from_dict(raw, overrides, source=str(path), key_lines=lines)


def config_from_dict(
    raw: dict[str, Any],
    overrides: Iterable[str] = (),
    *,
    source: str = "<config>",
    key_lines: dict[tuple[str, ...], int] | None = None,
) -> ExperimentConfig:
    """Validate a config given as a dict (the YAML file's content), applying overrides first."""
    key_lines = key_lines or {}
    overridden: dict[tuple[str, ...], str] = {}
    data = _deep_copy(raw)
    for override in overrides:
        key_path, value = parse_override(override)
        _assign(data, key_path, value, override)
        overridden[key_path] = override
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_describe(error, source, key_lines, overridden)) from None


def parse_override(override: str) -> tuple[tuple[str, ...], Any]:
    """``"model.dim=128"`` → (("model", "dim"), 128); the value is parsed as YAML (so 1e-3, [10, 20])."""
    key, sep, value = override.partition("=")
    if not sep or not key.strip() or any(not part for part in key.strip().split(".")):
        raise ConfigError(f"override '{override}': expected KEY.PATH=VALUE, e.g. model.dim=128")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError as error:
        raise ConfigError(f"override '{override}': value is not valid YAML ({error})") from error
    return tuple(key.strip().split(".")), parsed


def _assign(data: dict[str, Any], key_path: tuple[str, ...], value: Any, override: str) -> None:
    node = data
    for depth, key in enumerate(key_path[:-1]):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            where = ".".join(key_path[: depth + 1])
            raise ConfigError(f"override '{override}': '{where}' is a value, not a section")
        node = child
    node[key_path[-1]] = value


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _deep_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_deep_copy(item) for item in value]
    return value


def _key_lines(node: yaml.Node | None, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    """Map each key path of a composed YAML document to its 1-based line."""
    lines: dict[tuple[str, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = (*prefix, str(key_node.value))
            lines[path] = key_node.start_mark.line + 1
            lines.update(_key_lines(value_node, path))
    return lines


def _describe(
    error: ValidationError,
    source: str,
    key_lines: dict[tuple[str, ...], int],
    overridden: dict[tuple[str, ...], str],
) -> str:
    messages = []
    for problem in error.errors():
        location = tuple(str(part) for part in problem["loc"] if not isinstance(part, int))
        # the discriminated union adds the model name as a location part: drop it for display
        location = tuple(part for part in location if part not in (*MODEL_NAMES, "function-after"))
        message = problem["msg"]
        if problem["type"] == "union_tag_invalid":
            location = (*location, "name")
            context = problem.get("ctx", {})
            message = f"unknown name '{context.get('tag')}'; choose one of: {context.get('expected_tags')}"
        dotted = ".".join(location) or "(top level)"
        if problem["type"] == "extra_forbidden":
            message = "unknown key (check its spelling and section)"
        elif problem["type"] == "missing":
            message = "required key is missing"
        origin = _origin(location, source, key_lines, overridden)
        messages.append(f"{origin}: {dotted}: {message}")
    return "invalid configuration:\n  " + "\n  ".join(messages)


def _origin(
    location: tuple[str, ...],
    source: str,
    key_lines: dict[tuple[str, ...], int],
    overridden: dict[tuple[str, ...], str],
) -> str:
    for depth in range(len(location), 0, -1):
        prefix = location[:depth]
        if prefix in overridden:
            return f"override '{overridden[prefix]}'"
        if prefix in key_lines:
            return f"{source}:{key_lines[prefix]}"
    return source
