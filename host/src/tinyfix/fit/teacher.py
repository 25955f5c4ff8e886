# SPDX-License-Identifier: Apache-2.0
"""Teacher labels: the float reference model's probabilities on unlabeled field inputs take
the place of labels, so the whole labelled chain (temperature, prior, bias, vector scaling,
the head re-fit) runs without anyone labelling anything (fit_classification with soft
targets; every stage is kept or dropped on its held-out KL divergence to the teacher and
its top-1 agreement with it).

The teacher sees the same drifted inputs as the int8 model, so it corrects what
quantization lost and what the field's class mix changed, not what the drift costs the
float model itself. With a label-free input correction (fit.unlabeled "inputs"), the
"teacher+inputs" set runs the teacher on the corrected inputs instead, and fits the chain on
the int8 model's outputs for those same corrected inputs; the set keeps that input stage.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from tinyfix.core import Core, ModelInfo, Params
from tinyfix.fit.classification import fit_classification
from tinyfix.fit.float_params import InputSettings
from tinyfix.fit.head_source import HeadSource
from tinyfix.fit.options import FitOptions
from tinyfix.fit.quantize import quantize
from tinyfix.fit.result import StageDecision
from tinyfix.fit.unlabeled import Adapted

# The teacher's probabilities for real-valued inputs (N, *input shape).
Teacher = Callable[[NDArray], NDArray[np.float64]]
# The int8 model's raw outputs and feature vectors for inputs, with the input correction
# of a parameter set (None: none).
Int8Run = Callable[[NDArray, Params | None], tuple[NDArray, NDArray | None]]


def corrected_inputs(x: NDArray, settings: InputSettings) -> NDArray[np.float64]:
    """x' = (x - offset) * gain per channel (the last axis), as the input stage does."""
    return (np.asarray(x, dtype=np.float64) - settings.offset) * settings.gain


def fit_teacher(name: str, model: ModelInfo, x: NDArray, teacher: Teacher, run_int8: Int8Run,
                head: HeadSource | str | None, options: FitOptions, core: Core,
                inputs: Adapted | None = None) -> Adapted:
    """The labelled chain fitted to the teacher's probabilities on x (after the input
    correction of `inputs`, when given)."""
    start = None if inputs is None else inputs.float_params.input
    teacher_x = x if start is None else corrected_inputs(x, start)
    probs = teacher(teacher_x)
    raw, feats = run_int8(x, None if inputs is None else inputs.params)
    result = fit_classification(raw, probs, model, options, core, features=feats, head=head)
    where = "the field inputs" if start is None else "the field inputs after the input stage"
    share = np.bincount(np.argmax(probs, axis=1), minlength=model.n_classes) / max(len(x), 1)
    labels = StageDecision(
        "teacher labels", True,
        f"the float model's probabilities on {len(x)} of {where} are the targets; its "
        f"class mix [{', '.join(f'{p:.2f}' for p in share)}]; the stages below are scored "
        "against it: nll is the KL divergence to the teacher, accuracy the agreement")
    stages = [labels, *result.stages]
    fp = result.float_params if start is None else result.float_params.replace(input=start)
    if inputs is not None:
        stages = [*inputs.stages, *stages]
    params, _ = quantize(core, model, fp, options.device)
    return Adapted(name, params, fp, stages)
