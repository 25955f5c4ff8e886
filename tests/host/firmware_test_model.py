# SPDX-License-Identifier: Apache-2.0
"""The model the firmware's user-model scenario builds (tests/app/models/), and what the
host expects the device to answer for it.

A person-detection-shaped zoo model (RGB 96x96 input, 27,648 bytes, a 1x1 CONV_2D head)
given to the app with -DTINYFIX_MODEL. It keeps state between invocations: the head's input
gets its previous value added from a resource variable (zoo.stateful), so the firmware must
create resource variables and reset them when the host asks. Its inputs, raw outputs and
features (each from a reset state), a parameter set with a residual head and the decisions
under it come from the host: the twin's TFLM kernels and the C core built for the host.
The twister test (tests/app/pytest/test_user_model.py) has neither, so it reads them here,
and test_firmware_test_model.py checks they are current.

    .venv/bin/python tests/host/firmware_test_model.py          # rewrite the files
    .venv/bin/python tests/host/firmware_test_model.py --check  # exit 1 if stale
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "app" / "models"
MODEL = OUT / "large_input_int8.tflite"
EXPECTED = OUT / "large_input_expected.json"
PARAMS = OUT / "large_input_params.bin"
N_INPUTS = 3


def input_bytes(index: int, n: int) -> bytes:
    """A deterministic input the twister test rebuilds without numpy."""
    return bytes((i * 131 + index * 17 + (i >> 7) * 29) & 0xFF for i in range(n))


def build(committed: bytes | None = None) -> tuple[bytes, dict, bytes]:
    """The model (built by the zoo, or `committed`), its expectations and parameter set."""
    # The twister test imports this file in Zephyr's Python, without numpy: only here.
    import numpy as np

    sys.path.insert(0, str(REPO / "host" / "src"))
    from tinyfix.core import Core, Corrector, Params
    from tinyfix.fit import FloatParams, quantize
    from tinyfix.fit.head_params import quantize_residual
    from tinyfix.twin import ModelGraph, TflmRunner
    from tinyfix.zoo import build as zoo_build
    from tinyfix.zoo.stateful import carry_state

    if committed is None:
        plain = zoo_build("person_detect", seed=0, width=2).tflite
        head_op = ModelGraph.from_bytes(plain).final
        assert head_op is not None
        model = carry_state(plain, head_op.op_index)
    else:
        model = committed
    graph = ModelGraph.from_bytes(model, MODEL.name)
    assert graph.state and graph.final is not None  # stateful, and its head still found
    core = Core()
    info = graph.model_info(core)
    x = np.stack([np.frombuffer(input_bytes(i, graph.input.nbytes), dtype=np.int8)
                  for i in range(N_INPUTS)]).reshape((N_INPUTS, *graph.input.shape[1:]))
    raw, feats = TflmRunner(graph).run(x)  # each sample from a reset state
    assert feats is not None
    # The second input run right after the first: its features carry the first's.
    runner = TflmRunner(graph)
    runner.reset()
    runner.invoke(x[0].tobytes(), True)
    carried_raw, carried_feats, _ = runner.invoke(x[1].tobytes(), True)
    assert carried_feats is not None
    rng = np.random.default_rng(7)
    columns = np.arange(0, info.n_features, 2)
    head = quantize_residual(rng.normal(0, 4.0, (info.head_rows, columns.size)),
                             np.array([2.0, -2.0]), graph.feature.scale, columns,
                             info.n_features)
    fp = FloatParams.identity(info.n_classes, "probs").replace(head=head)
    params, _ = quantize(core, info, fp)
    blob = params.encode()
    corrector = Corrector(core, info, Params.decode(core, blob))
    results = [corrector.process(raw[i], features=feats[i]) for i in range(N_INPUTS)]
    expected = {
        "model_crc": f"0x{graph.crc:08x}",
        "input_bytes": graph.input.nbytes,
        "raw": raw.astype(int).tolist(),
        "features": feats.astype(int).tolist(),
        # Input 1 right after input 0, without a model reset.
        "raw_1_after_0": np.frombuffer(carried_raw, dtype=np.int8).astype(int).tolist(),
        "features_1_after_0": np.frombuffer(carried_feats, dtype=np.int8).astype(int).tolist(),
        "params_crc": f"0x{params.crc:08x}",
        "decisions_with_params": [int(r.decision) for r in results],
        # Q15 per class, as INFER returns them: bit-exact, or the device computed otherwise.
        "prob_with_params": [[int(v) for v in r.prob] for r in results],
    }
    return model, expected, blob


def main(argv: list[str]) -> int:
    if "--check" in argv:
        # The device is checked against these: they must be what today's TFLM and C core
        # give for the committed model. The zoo's rebuild may differ from it in the last
        # bits of a float scale (numpy, BLAS and CPU differ between machines), so it must
        # only be the same model: same size, same answers.
        _, expected, blob = build(MODEL.read_bytes())
        rebuilt, again, _ = build()
        current = (EXPECTED.read_text() == json.dumps(expected, indent=1) + "\n"
                   and PARAMS.read_bytes() == blob and len(rebuilt) == MODEL.stat().st_size
                   and all(again[k] == expected[k] for k in ("raw", "features", "raw_1_after_0",
                                                              "features_1_after_0")))
        return 0 if current else 1
    model, expected, blob = build()
    text = json.dumps(expected, indent=1) + "\n"
    OUT.mkdir(parents=True, exist_ok=True)
    MODEL.write_bytes(model)
    EXPECTED.write_text(text)
    PARAMS.write_bytes(blob)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
