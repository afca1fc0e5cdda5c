"""Typed experiment configuration: YAML in, validated by pydantic, with ``-o key=value`` overrides.

This is the only place that turns text into arguments: the trainer unpacks the validated models
into explicit constructor arguments, so encoders and loss terms never see a config object. Unknown
keys are errors that name the key and its line in the YAML file, never silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args

import yaml
from pydantic import Field, SerializeAsAny, ValidationError, field_validator, model_validator

from recforge.config_base import FilterSettings, ModelSettings
from recforge.config_base import Strict as _Strict
from recforge.errors import ConfigError
from recforge.objectives.term import TermParams
from recforge.yaml_settings import ConfigLoader, parse_override

MetricName = Literal["recall", "ndcg", "hit", "precision", "mrr", "map", "coverage"]


class FilterConfig(_Strict):
    """Cleaning applied after reading, before splitting; each step reports what it removed."""

    deduplicate: bool = True
    min_user_interactions: Annotated[int, Field(ge=0)] = 0
    min_item_interactions: Annotated[int, Field(ge=0)] = 0


class SplitConfig(_Strict):
    """How train/valid/test are made. ``given`` uses the source's own split files."""

    protocol: Literal["given", "random", "leave_one_out", "temporal", "links"] = "random"
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    valid_ratio: Annotated[float, Field(gt=0, lt=1)] | None = None
    seed: int | None = None
    new_users: Annotated[
        float, Field(ge=0, lt=1, description="links: share of users made new (cold start)")
    ] = 0.0
    new_user_keep: Annotated[int, Field(ge=0, description="links: training friendships a new user keeps")] = 1

    @model_validator(mode="after")
    def _new_users_need_links(self) -> SplitConfig:
        if self.protocol != "links" and (self.new_users != 0.0 or self.new_user_keep != 1):
            raise ValueError("new_users and new_user_keep make cold-start users of a friend graph: "
                             "they need protocol: links")
        return self

    @field_validator("ratios")
    @classmethod
    def _ratios_sum_to_one(cls, ratios: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(r <= 0 for r in ratios) or abs(sum(ratios) - 1.0) > 1e-6:
            raise ValueError(
                f"must be three positive fractions (train, valid, test) summing to 1, got {list(ratios)}: "
                "early stopping reads valid and the result is test, so neither may be empty"
            )
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


def _model_union() -> Any:
    """The ``model:`` section: one config class per recipe or filter, picked by ``name``."""
    from recforge.recipes import FILTERS, RECIPES

    trained = [recipe.config for recipe in RECIPES.values()]
    classes = (*trained, *(recipe.config for recipe in FILTERS.values()))
    return Annotated[Union[classes], Field(discriminator="name")]  # noqa: UP007 - built at run time


if TYPE_CHECKING:
    ModelConfig = ModelSettings | FilterSettings
else:
    ModelConfig = _model_union()


def _term_settings(raw: object) -> dict[str, TermParams]:
    """Validate ``objective.terms``: each entry by its term's own settings class, in file order (the
    order the terms are summed in). ``name: null`` (e.g. ``-o objective.terms.cir=null``) drops a
    term, which is how an ablation leaves one out."""
    from recforge.objectives.registry import TERMS

    if not isinstance(raw, dict):
        raise ValueError(
            f"objective.terms: expected a mapping of term name -> {{weight: ..., parameters}}, got {raw!r}"
        )
    settings: dict[str, TermParams] = {}
    for name, value in raw.items():
        if value is None:
            continue
        if name not in TERMS:
            raise ValueError(f"objective.terms.{name}: unknown loss term; choose one of: {', '.join(TERMS)}")
        if isinstance(value, TermParams):
            settings[name] = value
            continue
        if not isinstance(value, dict):
            raise ValueError(
                f"objective.terms.{name}: expected a mapping such as {{weight: 1.0}}, got {value!r}"
            )
        params_class = TERMS[name].Params
        try:
            settings[name] = params_class.model_validate(value)
        except ValidationError as error:
            accepted = ", ".join(params_class.model_fields)
            problems = []
            for problem in error.errors():
                where = ".".join(str(part) for part in problem["loc"])
                if problem["type"] == "extra_forbidden":
                    message = f"term '{name}' has no parameter '{where}'; it takes: {accepted}"
                elif problem["type"] == "missing":
                    message = "required key is missing"
                else:
                    message = problem["msg"].removeprefix("Value error, ")
                problems.append(f"objective.terms.{name}.{where}: {message}")
            raise ValueError("\n".join(problems)) from None
    if not settings:
        raise ValueError("objective.terms: at least one loss term is needed")
    return settings


class ObjectiveConfig(_Strict):
    """Named loss terms with their weights and own parameters (DESIGN idea 2):
    total = Σ_k weight_k · term_k, summed in the order the file lists them."""

    terms: dict[str, SerializeAsAny[TermParams]] = Field(
        default_factory=lambda: {"bpr": TermParams(weight=1.0), "l2": TermParams(weight=1e-4)}
    )
    teacher: Path | None = Field(
        default=None, description="a TeacherSignal directory (recforge teacher export) for distillation terms"
    )

    @field_validator("terms", mode="before")
    @classmethod
    def _validate_terms(cls, raw: object) -> dict[str, TermParams]:
        return _term_settings(raw)


class TrainConfig(_Strict):
    epochs: Annotated[int, Field(gt=0)] = 100
    batch_size: Annotated[int, Field(gt=0)] = 2048
    learning_rate: Annotated[float, Field(gt=0)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0)] = Field(
        default=0.0,
        description=(
            "Adam's (coupled) L2 on every parameter, every step: λθ added to each gradient, rows "
            "outside the batch included, as torch.optim.Adam(weight_decay=λ) does. The loss terms are "
            "batch means, so a reference that sums its loss over a batch of B with decay λ is λ/B here"
        ),
    )
    lr_schedule: Literal["constant", "cosine"] = "constant"
    num_negatives: Annotated[int, Field(gt=0)] = 1
    early_stopping_metric: str = "recall@20"
    patience: Annotated[int, Field(gt=0)] = 10
    eval_every: Annotated[int, Field(gt=0)] = 1
    max_train_seconds: Annotated[float, Field(gt=0)] | None = None
    device: str = "auto"
    num_threads: Annotated[int, Field(gt=0)] | None = None


class EvaluationConfig(_Strict):
    """How valid and test are scored: full ranking (``sampled_negatives: null``, the default), or each
    user's held-out items against ``sampled_negatives`` items they never interacted with (DE-RRD's
    CiteULike protocol: 499), drawn with ``sampled_seed``, a fixed value rather than the experiment
    seed, so every run and model on a split meets the same candidates. The configured protocol has
    the plain metric keys (``ndcg@10``) that early stopping reads; sampled mode also reports full
    ranking as ``full/ndcg@10`` (:mod:`recforge.evaluation.evaluator`)."""

    ks: list[Annotated[int, Field(gt=0)]] = Field(default_factory=lambda: [10, 20], min_length=1)
    metrics: list[MetricName] = Field(default_factory=lambda: list(get_args(MetricName)), min_length=1)
    batch_size: Annotated[int, Field(gt=0)] = 1024
    activity_slices: list[Annotated[int, Field(ge=0)]] = Field(default_factory=lambda: [5, 20])
    # Field(gt=0) rather than Annotated[int, Field(gt=0)] | None: Strict's no-coercion check sees
    # through "int | None" but not through an Annotated member of a union (True would pass as 1)
    sampled_negatives: int | None = Field(default=None, gt=0)
    sampled_seed: Annotated[int, Field(ge=0)] = 0


FILTER_TRAIN_SETTINGS = frozenset({"num_threads"})
"""The ``train:`` keys a filter reads: how many threads fit and score it (filters run on the CPU,
in scipy's sparse kernels and torch's CPU LAPACK)."""


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

    @property
    def is_filter(self) -> bool:
        """Whether the model is a training-free filter (fitted once, no objective, no epochs)."""
        return isinstance(self.model, FilterSettings)

    @property
    def trained_model(self) -> ModelSettings:
        """The ``model`` section of a model that trains (what tasks and encoders read)."""
        if not isinstance(self.model, ModelSettings):
            raise ConfigError(f"model '{self.model.name}' is a training-free filter: no encoder to train")
        return self.model

    @property
    def filter_model(self) -> FilterSettings:
        """The ``model`` section of a training-free filter."""
        if not isinstance(self.model, FilterSettings):
            raise ConfigError(f"model '{self.model.name}' is trained, not a training-free filter")
        return self.model

    @model_validator(mode="after")
    def _filters_have_no_training(self) -> ExperimentConfig:
        if not self.is_filter:
            return self
        if self.objective != ObjectiveConfig():  # set by hand (a saved run's defaults are fine)
            raise ValueError(
                f"objective: model '{self.model.name}' is a training-free filter, fitted in closed form "
                "from the training matrix; it has no loss terms or teacher (remove the objective section)"
            )
        defaults = TrainConfig()
        ignored = sorted(
            name
            for name in TrainConfig.model_fields
            if name not in FILTER_TRAIN_SETTINGS and getattr(self.train, name) != getattr(defaults, name)
        )
        if ignored:
            raise ValueError(
                f"train.{ignored[0]}: model '{self.model.name}' is a training-free filter fitted on the "
                f"CPU, so train.{', train.'.join(ignored)} would have no effect; it reads only "
                "train.num_threads"
            )
        return self

    @model_validator(mode="after")
    def _terms_fit_the_model(self) -> ExperimentConfig:
        from recforge.objectives.registry import TERMS
        from recforge.recipes import RECIPES

        if self.is_filter:
            return self
        provided = RECIPES[self.model.name].task.provides(self.trained_model)
        if getattr(self.trained_model, "teacher_offset", None) is not None and self.objective.teacher is None:
            raise ValueError(
                "model.teacher_offset: the offset projects a teacher's item embeddings; set "
                "objective.teacher to a TeacherSignal directory that has them"
            )
        for name in self.objective.terms:
            if TERMS[name].teacher_needs and self.objective.teacher is None:
                raise ValueError(
                    f"objective.terms.{name}: term '{name}' reads a teacher; set objective.teacher to a "
                    "TeacherSignal directory (recforge teacher export RUN_DIR -o DIR)"
                )
            missing = sorted(TERMS[name].needs - provided)
            if missing:
                raise ValueError(
                    f"objective.terms.{name}: term '{name}' needs {missing}, which model "
                    f"'{self.model.name}' (as configured) does not provide; it provides {sorted(provided)}"
                )
        return self

    @model_validator(mode="after")
    def _stopping_metric_is_evaluated(self) -> ExperimentConfig:
        if self.is_filter:
            return self  # nothing stops early
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
        raw = yaml.load(text, Loader=ConfigLoader)
        lines = _key_lines(yaml.compose(text, Loader=ConfigLoader))
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
    from recforge.recipes import FILTERS, RECIPES

    messages = []
    for problem in error.errors():
        location = tuple(str(part) for part in problem["loc"] if not isinstance(part, int))
        # the discriminated union adds the model name as a location part: drop it for display
        location = tuple(part for part in location if part not in (*RECIPES, *FILTERS, "function-after"))
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "union_tag_invalid":
            location = (*location, "name")
            context = problem.get("ctx", {})
            message = f"unknown name '{context.get('tag')}'; choose one of: {context.get('expected_tags')}"
        if problem["type"] == "extra_forbidden":
            message = "unknown key (check its spelling and section)"
        elif problem["type"] == "missing":
            message = "required key is missing"
        for line in message.splitlines():
            where, text = location, line
            # a validator that knows the exact key says so first: "objective.terms.cir: ..."
            named = _NAMED_KEY.match(line)
            if named:
                where, text = tuple(named.group(1).split(".")), named.group(2)
            origin = _origin(where, source, key_lines, overridden)
            messages.append(f"{origin}: {'.'.join(where) or '(top level)'}: {text}")
    return "invalid configuration:\n  " + "\n  ".join(messages)


_NAMED_KEY = re.compile(r"^((?:data|model|objective|train|evaluation)(?:\.[\w@]+)+): (.*)$")


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
        # a section the file lacks, created by an override of one of its keys
        created_by = [override for path, override in overridden.items() if path[:depth] == prefix]
        if created_by:
            return f"override '{created_by[0]}'"
    return source
