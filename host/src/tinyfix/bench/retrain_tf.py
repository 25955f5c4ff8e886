# SPDX-License-Identifier: Apache-2.0
"""Fine-tune the demo's float model on field data and re-quantize it: the benchmark's upper
bound (what retraining would buy). Runs under a Python with TensorFlow, as a subprocess of
`tinyfix.bench` (TensorFlow is no dependency of TinyFix), so it imports only numpy and
TensorFlow:

    python retrain_tf.py IN.npz OUT_DIR [--epochs N]

IN.npz holds the float model's layers (read from gesture_float.tflite by the caller: conv1_w
(O, H, W, I), conv1_b, conv2_w, conv2_b, fc1_w (O, I), fc1_b, fc2_w, fc2_b), the
fine-tuning split (x_fit, y_fit), the held-out split that stops it (x_val, y_val) and the
representative windows for quantization (x_rep). OUT_DIR gets int8.tflite, float.tflite,
before.npy (the rebuilt model's logits on x_val before any training, so the caller can
check the rebuild against the original) and log.json.

The rebuilt Keras model is the demo's architecture (scripts/train_demo_model.py) with the
batch normalisations folded into the convolutions, as the .tflite stores them; all layers
are fine-tuned with the original loss (label smoothing 0.05), Adam, early stopping on the
held-out split with the best weights restored. Conversion is the original's: full-integer
post-training quantization with int8 input and output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

SEED = 4101
LEARNING_RATE = 1e-3
BATCH = 32
PATIENCE = 10
LABEL_SMOOTHING = 0.05


def build(tf: Any, layers: dict[str, np.ndarray]) -> Any:
    k = tf.keras.layers
    window, channels = 64, 3
    inp = k.Input(shape=(window, channels), name="accel")
    x = k.Reshape((window, 1, channels))(inp)
    conv1 = k.Conv2D(layers["conv1_w"].shape[0], (5, 1), strides=(2, 1), padding="same",
                     activation="relu")
    conv2 = k.Conv2D(layers["conv2_w"].shape[0], (5, 1), strides=(2, 1), padding="same",
                     activation="relu")
    x = conv2(conv1(x))
    x = k.MaxPooling2D((4, 1))(x)
    x = k.Flatten()(x)
    x = k.Dropout(0.2)(x)
    fc1 = k.Dense(layers["fc1_w"].shape[0], activation="relu")
    fc2 = k.Dense(layers["fc2_w"].shape[0])
    out = fc2(fc1(x))
    model = tf.keras.Model(inp, out, name="gesture_field")
    # TFLite stores conv filters (O, H, W, I) and dense weights (O, I); Keras wants
    # (H, W, I, O) and (I, O).
    conv1.set_weights([layers["conv1_w"].transpose(1, 2, 3, 0), layers["conv1_b"]])
    conv2.set_weights([layers["conv2_w"].transpose(1, 2, 3, 0), layers["conv2_b"]])
    fc1.set_weights([layers["fc1_w"].T, layers["fc1_b"]])
    fc2.set_weights([layers["fc2_w"].T, layers["fc2_b"]])
    return model


def convert(tf: Any, model: Any, rep_x: np.ndarray) -> tuple[bytes, bytes]:
    """(float, int8) flatbuffers, converted as scripts/train_demo_model.py does."""
    spec = tf.TensorSpec((1, *model.input_shape[1:]), tf.float32, name="accel")
    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp, format="tf_saved_model", input_signature=[spec], verbose=False)
        float_fb = tf.lite.TFLiteConverter.from_saved_model(tmp).convert()
        conv = tf.lite.TFLiteConverter.from_saved_model(tmp)

        def representative() -> Iterator[list[np.ndarray]]:
            for row in rep_x:
                yield [row[None].astype(np.float32)]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
        int8_fb = conv.convert()
    return float_fb, int8_fb


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--epochs", type=int, default=100,
                        help="most epochs (default: %(default)s)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()
    started = time.monotonic()
    d = dict(np.load(args.data))
    model = build(tf, d)
    args.out.mkdir(parents=True, exist_ok=True)
    np.save(args.out / "before.npy", model.predict(d["x_val"], verbose=0))
    n_classes = d["fc2_w"].shape[0]
    model.compile(optimizer=tf.keras.optimizers.Adam(LEARNING_RATE),
                  loss=tf.keras.losses.CategoricalCrossentropy(
                      from_logits=True, label_smoothing=LABEL_SMOOTHING),
                  metrics=["accuracy"])
    history = model.fit(
        d["x_fit"], np.eye(n_classes)[d["y_fit"]],
        validation_data=(d["x_val"], np.eye(n_classes)[d["y_val"]]),
        epochs=args.epochs, batch_size=BATCH, verbose=0,
        callbacks=[tf.keras.callbacks.EarlyStopping(patience=PATIENCE,
                                                    restore_best_weights=True)])
    float_fb, int8_fb = convert(tf, model, d["x_rep"])
    (args.out / "float.tflite").write_bytes(float_fb)
    (args.out / "int8.tflite").write_bytes(int8_fb)
    val_loss = [float(v) for v in history.history["val_loss"]]
    log = {"tensorflow": tf.__version__, "epochs_run": len(val_loss),
           "best_epoch": int(np.argmin(val_loss)) + 1, "best_val_loss": min(val_loss),
           "seconds": round(time.monotonic() - started, 1), "seed": SEED,
           "learning_rate": LEARNING_RATE, "batch": BATCH, "patience": PATIENCE}
    (args.out / "log.json").write_text(json.dumps(log, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
