"""Every loss term a config may name: one explicit dict from name to term class.

``objective.terms`` in an experiment file picks terms from :data:`TERMS` by these names; each entry
is validated by the term's own ``Params`` class (its weight and parameters), and the term's
``needs`` are checked against what the model's task provides.
"""

from __future__ import annotations

from typing import Any

from recforge.distill.importance import ImportanceRD
from recforge.distill.latent import DE, PHR
from recforge.distill.ranking import IRRRD, RRD
from recforge.distill.topology import FTD, HTD
from recforge.objectives.batch_terms import (
    BPR,
    L2,
    Alignment,
    BinaryCrossEntropy,
    InBatchSoftmax,
    SampledSoftmax,
    SharedSoftmax,
    Uniformity,
)
from recforge.objectives.graph_sequence_terms import GraphAlignment, GraphUniformity, SequenceUniformity
from recforge.objectives.rationale_terms import Contrast, Distillation, Independence, Reconstruction
from recforge.objectives.self_supervised import CCASSG, MaskedFeatureReconstruction
from recforge.objectives.sequence_terms import DROS, CrossEntropy
from recforge.objectives.term import Term

TERMS: dict[str, type[Term[Any]]] = {
    "bpr": BPR,
    "softmax": SampledSoftmax,
    "shared_softmax": SharedSoftmax,
    "in_batch_softmax": InBatchSoftmax,
    "bce": BinaryCrossEntropy,
    "ce": CrossEntropy,
    "dros": DROS,
    "alignment": Alignment,
    "uniformity": Uniformity,
    "l2": L2,
    "graph_alignment": GraphAlignment,
    "graph_uniformity": GraphUniformity,
    "sequence_uniformity": SequenceUniformity,
    "reconstruction": Reconstruction,
    "contrast": Contrast,
    "cir": Independence,
    "distill": Distillation,
    "rrd": RRD,
    "ir_rrd": IRRRD,
    "de": DE,
    "phr": PHR,
    "ftd": FTD,
    "htd": HTD,
    "importance_rd": ImportanceRD,
    "cca_ssg": CCASSG,
    "masked_features": MaskedFeatureReconstruction,
}


def term_parameters(name: str) -> dict[str, str]:
    """A term's settings besides ``weight``, as ``name -> "default (description)"``."""
    fields = TERMS[name].Params.model_fields
    described = {}
    for key, info in fields.items():
        if key == "weight":
            continue
        described[key] = f"{info.default}" + (f" ({info.description})" if info.description else "")
    return described


def terms_markdown() -> str:
    """The term table of the README (a test keeps the two identical): name, needs, parameters."""
    lines = ["| term | needs | parameters (default) | what |", "|---|---|---|---|"]
    for name, term in TERMS.items():
        parameters = ", ".join(f"`{key}` {value}" for key, value in term_parameters(name).items()) or "—"
        needs = ", ".join(
            [f"`{need}`" for need in sorted(term.needs)]
            + [f"teacher `{need}`" for need in sorted(term.teacher_needs)]
        )
        lines.append(f"| `{name}` | {needs} | {parameters} | {term.summary} |")
    return "\n".join(lines)
