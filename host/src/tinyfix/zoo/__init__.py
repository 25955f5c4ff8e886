# SPDX-License-Identifier: Apache-2.0
"""A zoo of int8 TFLite Micro test models with labelled data, built without TensorFlow.

Each topology is a small float graph with numpy weights (hidden layers rescaled on a pool of
inputs as folded batch norm would be, a linear-discriminant head with balanced classes),
quantized as the TFLite converter's full-integer post-training quantization does, and
written as a .tflite flatbuffer that tflite-micro's runtime runs::

    from tinyfix.zoo import TOPOLOGIES, build
    zm = build("ds_cnn", seed=0)            # deterministic: same parameters, same bytes
    zm.name, zm.kind                        # "classifier" | "binary" | "autoencoder" | "hybrid"
    zm.tflite                               # the model under test (int8, 16x8 or hybrid)
    zm.float_tflite                         # float32 model with the same weights
    zm.input_shape, zm.output_shape, zm.n_classes, zm.class_names
    zm.forward_float(x)                     # float reference outputs (N, outputs)
    x, y = zm.dataset(n=300, seed=1, drift="lab")   # or drift="field"
    zm.predict(outputs, x)                  # labels from real-valued outputs
    zm.save(folder)                         # <name>_int8.tflite, <name>_float.tflite
    zm.save_dataset("field.npz", drift="field")     # the README's classification .npz

    from tinyfix.zoo.runner import TflmModel
    TflmModel(zm.tflite).run(x)             # real outputs through TFLM's kernels

`x` is float32 in the model's real input units, shaped like the input without its batch
dimension. A classifier's `y` is its float model's decision on the clean input (binary
models: 0/1); the autoencoder's `y` is 0 normal, 1 anomaly, and `predict` compares its
reconstruction error with `zm.anomaly_threshold`. "field" data passes the same kind of
samples through a per-channel gain and offset error plus noise, sized per model so the
float model keeps about 78% of its labels; `drift_seed` picks another device.

Topologies take `seed` and, where natural, `n_classes` and input sizes (see each function
in tinyfix.zoo.topologies). Files: graph (float graph), kernels (TFLite float semantics),
builder (layer fitting), quantize (converter rules), flatbuffer (writer), data (inputs,
drift, .npz), topologies (the registry), model (ZooModel), runner (TFLM), stateful (a
resource-variable state carried between invocations, for the "stateful" topology).
"""

from tinyfix.zoo.data import reconstruction_error, write_npz
from tinyfix.zoo.model import KINDS, Design, ZooModel, realize
from tinyfix.zoo.topologies import TOPOLOGIES

__all__ = ["KINDS", "TOPOLOGIES", "Design", "ZooModel", "build", "realize",
           "reconstruction_error", "write_npz"]


def build(name: str, **params: object) -> ZooModel:
    """The zoo model `name` with the topology's keyword parameters (e.g. seed, n_classes)."""
    try:
        topology = TOPOLOGIES[name]
    except KeyError:
        raise ValueError(f"no zoo topology {name!r}; one of {', '.join(TOPOLOGIES)}") from None
    return realize(topology(**params))
