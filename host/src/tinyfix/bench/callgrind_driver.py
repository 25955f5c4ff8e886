# SPDX-License-Identifier: Apache-2.0
"""The small program the cost section runs under `valgrind --tool=callgrind`: N calls of one
function on real data, nothing else worth counting (callgrind collects only inside the
function named by --toggle-collect, so Python, imports and setup do not count).

    python callgrind_driver.py tflm MODEL.tflite INPUTS.npy N
    python callgrind_driver.py tinyfix MODEL.json PARAMS.bin RAW.npy N [FEATURES.npy]

tflm: MicroInterpreter::Invoke() of the tflite-micro package (its default interpreter
configuration, as firmware runs it) on int8 inputs (the demo model's windows, or the
feature vectors for the one-op model of its last layer, see last_layer.py). tinyfix:
tinyfix_process() of the host build of modules/tinyfix (tinyfix.ccore) with an encoded
parameter set on raw int8 outputs, one frame every 250 ms, with the model's int8 feature
vectors when the set re-fits the last layer (the head stage reads them).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

TFLM_ARENA_BYTES = 64 * 1024


def tflm(model: Path, inputs: Path, n: int) -> None:
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(model.read_bytes(), arena_size=TFLM_ARENA_BYTES)
    x = np.load(inputs)
    for i in range(n):
        interp.set_input(x[i % len(x)][None], 0)
        interp.invoke()


def tinyfix(model_json: Path, params: Path, raw_path: Path, n: int,
            features_path: Path | None = None) -> None:
    from tinyfix.core import Core, Corrector, ModelInfo, Params

    core = Core("fixed")
    model = ModelInfo(**json.loads(model_json.read_text()))
    corrector = Corrector(core, model, Params.decode(core, params.read_bytes()))
    raw = np.load(raw_path)
    feats = None if features_path is None else np.load(features_path)
    for i in range(n):
        corrector.process(raw[i % len(raw)], time_ms=250 * i,
                          features=None if feats is None else feats[i % len(feats)])


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) == 4 and args[0] == "tflm":
        tflm(Path(args[1]), Path(args[2]), int(args[3]))
    elif len(args) in (5, 6) and args[0] == "tinyfix":
        tinyfix(Path(args[1]), Path(args[2]), Path(args[3]), int(args[4]),
                Path(args[5]) if len(args) == 6 else None)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
