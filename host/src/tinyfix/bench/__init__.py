# SPDX-License-Identifier: Apache-2.0
"""The accuracy-repair benchmark (issue 6, part 3): `scripts/bench [--quick]`.

Three scenarios on the bundled gesture model and a synthetic anomaly score, each a table of
rows (float, int8 on lab data, int8 on field data, int8 on field data + TinyFix, and where
TensorFlow is available a retrained upper bound), then the cost of the correction against
one TFLM Invoke(). The field-adaptation rows of issue 9 sit beside them: the head re-fit
(classification and streaming), the label-free sets and on-device adaptation
(classification), and the head stage's cost against the model's own last layer. Every
TinyFix figure comes from a parameter set (fitted by tinyfix.fit, or adapted by the core
itself) run through the C core (tinyfix.fit.through_core, tinyfix.core.Corrector); model
outputs and feature vectors come from the real TFLM kernels (tinyfix.twin.tflm).

One file per scenario (classification, streaming, anomaly), the shared data, models and
fits in context, the label-free and on-device rows in field_adaptation, the retraining
upper bound in upper_bound (TensorFlow in a subprocess), the cost in cost (the one-op model
of the last layer it times in last_layer), and the table / markdown / JSON writer in
table. Scenarios return a table; adding a row is appending a table.Row.

This package's import does not load numpy or the C core, so a subprocess can run one of its
files (the TensorFlow retraining script, the callgrind driver) without the rest.
"""
