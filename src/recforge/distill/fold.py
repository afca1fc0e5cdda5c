"""Fold a student's teacher offset into its item table: a plain student run directory.

A student trained with ``model.teacher_offset`` (DLLM2Rec's collaborative embedding distillation)
keeps the teacher's item rows and the projector in its weights, because the item table
``E + w_e·P(T)`` is computed from them. After training that table is a constant:
:func:`fold_run` computes it once and writes a run directory of the plain student (the same
encoder with an ordinary item table, no teacher files, no projector), which scores identically
and serves at the cost of the student alone. :func:`~recforge.retrieval.recommender.load_recommender`
folds the same way on load; this makes the artefact explicit (and smaller: ML-1M's 3,706 x 4,096
LLM rows are 61 MB).
"""

from __future__ import annotations

import json
import shutil
from functools import partial
from pathlib import Path

from recforge.checkpoint import WEIGHTS_FILE, read_checkpoint_info, save_weights
from recforge.config import load_config
from recforge.errors import ConfigError
from recforge.files import atomic_write
from recforge.objectives.registry import TERMS
from recforge.train.run_directory import RunDirectory

COPIED = ("split.npz", "id_maps.json", "log.jsonl")


def fold_run(run_dir: str | Path, output: str | Path) -> Path:
    """Write the folded student of ``run_dir`` to ``output`` (see the module docstring).

    The folded config drops ``model.teacher_offset``, ``objective.teacher`` and the terms that read
    a teacher (they shaped training, not the model); ``metrics.json`` is copied with
    ``folded_from`` added.

    Raises:
        ConfigError: the run has no teacher offset to fold.
        CheckpointError: the run directory is incomplete or its weights do not fit.
    """
    from recforge.retrieval.recommender import load_recommender

    run_dir, output = Path(run_dir), Path(output)
    config = load_config(run_dir / "config.yaml")
    settings = config.trained_model
    if getattr(settings, "teacher_offset", None) is None:
        raise ConfigError(f"{run_dir}: model.teacher_offset is not set; there is nothing to fold")
    if output.resolve() == run_dir.resolve():
        raise ConfigError(f"{output}: write the folded student to another directory than the run's")
    recommender = load_recommender(run_dir, device="cpu")  # folds the table on load
    assert recommender.model is not None
    terms = config.objective.terms
    plain_terms = {name: term for name, term in terms.items() if not TERMS[name].teacher_needs}
    folded = config.model_copy(
        update={
            "model": settings.model_copy(update={"teacher_offset": None}),
            "objective": config.objective.model_copy(update={"teacher": None, "terms": plain_terms}),
            "output_dir": output,
        }
    )
    info = read_checkpoint_info(run_dir / WEIGHTS_FILE)
    with RunDirectory(output) as run:
        run.clear_results()
        for name in COPIED:
            if (run_dir / name).is_file():
                atomic_write(output / name, partial(_copy, run_dir / name))
        save_weights({"model": recommender.model}, output / WEIGHTS_FILE, info)
        run.write_text("config.yaml", folded.to_yaml())
        metrics_path = run_dir / "metrics.json"
        if metrics_path.is_file():
            metrics = json.loads(metrics_path.read_text())
            run.write_json("metrics.json", {**metrics, "folded_from": str(run_dir.resolve())})
    return output


def _copy(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)


__all__ = ["fold_run"]
