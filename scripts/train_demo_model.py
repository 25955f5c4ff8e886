# SPDX-License-Identifier: Apache-2.0
"""Train, quantize and document the bundled gesture demo model (optional extra).

Needs TensorFlow (``pip install tensorflow-cpu``) and, for the TFLM check,
``pip install tflite-micro``; nothing else in TinyFix does. It writes
models/gesture/: gesture_float.tflite, gesture_int8.tflite (full-integer PTQ, int8
input and output, graph ending in FULLY_CONNECTED logits), gesture_model_data.c/.h,
seeds.json and MODEL_CARD.md.

    python scripts/train_demo_model.py            # about 70 s on 2 cores
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
from types import ModuleType
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent / "demo_data"))

import check_model
import gesture_data as gd
from tflite_to_c import write_c_array

REPO = Path(__file__).resolve().parent.parent

TRAIN_SEED = 4001
REPRESENTATIVE_SEED = 4002
REPRESENTATIVE_N = 600
PENULTIMATE_UNITS = 24
LABEL_SMOOTHING = 0.05
SIZES = {
    key: gd.DEFAULT_SPLITS[key][1]
    for key in ("lab_train", "lab_val", "lab_test", "field_test")
}


def build_model(tf: ModuleType) -> Any:
    """Conv(5x1, /2) -> Conv(5x1, /2) -> max-pool -> Dense(24, relu) -> Dense(6) logits.

    The 1-D convolutions are written as 2-D ones over a (64, 1, 3) view so the int8
    graph is RESHAPE, CONV_2D, ... with no EXPAND_DIMS, and BatchNorm folds into the
    convolutions at conversion.
    """
    layers = tf.keras.layers
    inp = layers.Input(shape=gd.INPUT_SHAPE, name="accel")
    x = layers.Reshape((gd.WINDOW_SAMPLES, 1, 3))(inp)
    x = layers.Conv2D(12, (5, 1), strides=(2, 1), padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Conv2D(16, (5, 1), strides=(2, 1), padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.MaxPooling2D((4, 1))(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.2)(x)
    x = layers.Dense(PENULTIMATE_UNITS, activation="relu", name="penultimate")(x)
    out = layers.Dense(len(gd.CLASS_NAMES), name="logits")(x)
    return tf.keras.Model(inp, out, name="gesture")


def train(tf: ModuleType, data: dict[str, dict[str, np.ndarray]], epochs: int) -> Any:
    tf.keras.utils.set_random_seed(TRAIN_SEED)
    model = build_model(tf)
    # Label smoothing keeps the logits within a few units, so the int8 output scale
    # stays fine enough for calibration downstream.
    model.compile(
        optimizer=tf.keras.optimizers.Adam(3e-3),
        loss=tf.keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=LABEL_SMOOTHING
        ),
        metrics=["accuracy"],
    )
    n_classes = len(gd.CLASS_NAMES)
    callbacks = [
        tf.keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=4, min_lr=1e-4),
        tf.keras.callbacks.EarlyStopping(patience=10, restore_best_weights=True),
    ]
    model.fit(
        data["lab_train"]["x"],
        np.eye(n_classes)[data["lab_train"]["y"]],
        validation_data=(data["lab_val"]["x"], np.eye(n_classes)[data["lab_val"]["y"]]),
        epochs=epochs,
        batch_size=64,
        callbacks=callbacks,
        verbose=2,
    )
    return model


def convert(tf: ModuleType, model: Any, rep_x: np.ndarray) -> tuple[bytes, bytes]:
    """Return (float, int8) flatbuffers."""
    spec = tf.TensorSpec((1, *gd.INPUT_SHAPE), tf.float32, name="accel")
    with tempfile.TemporaryDirectory() as tmp:
        # A SavedModel with a batch-1 signature: the converter freezes its variables
        # (a Keras 3 concrete function would keep them as resource reads).
        model.export(
            tmp, format="tf_saved_model", input_signature=[spec], verbose=False
        )
        float_model = tf.lite.TFLiteConverter.from_saved_model(tmp).convert()
        conv = tf.lite.TFLiteConverter.from_saved_model(tmp)

        def representative() -> Iterator[list[np.ndarray]]:
            for row in rep_x:
                yield [row[None].astype(np.float32)]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
        int8_model = conv.convert()
    return float_model, int8_model


def tflite_predict(tf: ModuleType, flatbuffer: bytes, x: np.ndarray) -> np.ndarray:
    """Class predictions from the TFLite (desktop) interpreter, quantizing if int8."""
    interp = tf.lite.Interpreter(model_content=flatbuffer)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    if inp["dtype"] == np.int8:
        scale, zp = inp["quantization"]
        x = np.clip(np.round(x / scale) + zp, -128, 127).astype(np.int8)
    preds = np.empty(len(x), dtype=np.int64)
    for i, row in enumerate(x):
        interp.set_tensor(inp["index"], row[None])
        interp.invoke()
        preds[i] = int(np.argmax(interp.get_tensor(out["index"])[0]))
    return preds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=REPO / "models" / "gesture",
        help="where the artifacts go (default: %(default)s)",
    )
    parser.add_argument(
        "--epochs", type=int, default=80, help="max epochs (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()

    t0 = time.monotonic()
    data = {
        key: gd.generate_classification(
            gd.DEFAULT_SPLITS[key][0], n, gd.SEEDS[gd.DEFAULT_SPLITS[key][2]]
        )
        for key, n in SIZES.items()
    }
    t_data = time.monotonic() - t0

    t0 = time.monotonic()
    model = train(tf, data, args.epochs)
    t_train = time.monotonic() - t0

    rep_rng = np.random.default_rng(REPRESENTATIVE_SEED)
    rep_idx = rep_rng.choice(
        len(data["lab_train"]["y"]), REPRESENTATIVE_N, replace=False
    )
    float_fb, int8_fb = convert(tf, model, data["lab_train"]["x"][rep_idx])

    args.out_dir.mkdir(parents=True, exist_ok=True)
    float_path = args.out_dir / "gesture_float.tflite"
    int8_path = args.out_dir / "gesture_int8.tflite"
    float_path.write_bytes(float_fb)
    int8_path.write_bytes(int8_fb)
    _, _, crc = write_c_array(int8_path, "gesture_model_data", args.out_dir)

    acc: dict[str, dict[str, float]] = {}
    for split in ("lab_test", "field_test"):
        x, y = data[split]["x"], data[split]["y"]
        keras_pred = np.argmax(model.predict(x, verbose=0), axis=1)
        acc[split] = {
            "keras_float": float(np.mean(keras_pred == y)),
            "tflite_float": float(np.mean(tflite_predict(tf, float_fb, x) == y)),
            "tflite_int8": float(np.mean(tflite_predict(tf, int8_fb, x) == y)),
        }
    report = check_model.check(
        int8_path, {k: data[k] for k in ("lab_test", "field_test")}
    )
    for split in ("lab_test", "field_test"):
        acc[split]["tflm_int8"] = report["accuracy"][split]

    training = {
        "train_seed": TRAIN_SEED,
        "label_smoothing": LABEL_SMOOTHING,
        "representative_seed": REPRESENTATIVE_SEED,
        "representative_n": REPRESENTATIVE_N,
        "sizes": SIZES,
        "epochs_run": len(model.history.history["loss"]),
        "params": int(model.count_params()),
        "train_seconds": round(t_train, 1),
        "data_seconds": round(t_data, 1),
        "tensorflow": tf.__version__,
    }
    seeds = {
        "SPDX-License-Identifier": "Apache-2.0",
        "generator": {k: v for k, v in gd.config().items() if not k.startswith("SPDX")},
        "training": training,
        "model_crc32": f"0x{crc:08X}",
    }
    (args.out_dir / "seeds.json").write_text(json.dumps(seeds, indent=2) + "\n")
    card = check_model.model_card(report, acc, training, crc)
    (args.out_dir / "MODEL_CARD.md").write_text(card)
    print(json.dumps({"accuracy": acc, "training": training}, indent=2))
    print(f"arena {report['arena_bytes']} B, model {report['model_bytes']} B")
    return 0


if __name__ == "__main__":
    sys.exit(main())
