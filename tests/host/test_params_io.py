# SPDX-License-Identifier: Apache-2.0
"""params.yaml, tinyfix.overlay and tinyfix.conf: exact round trips to the same sealed blob,
names that match the devicetree binding, clear refusals of damaged files."""

from pathlib import Path

import pytest
import yaml
from fit_synthetic import LOGITS_MODEL, logits_set
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyfix import params_io
from tinyfix.core import ModelInfo, Params
from tinyfix.errors import TinyfixError
from tinyfix.fit import FitOptions, fit_classification

BINDING = (Path(__file__).resolve().parents[2] / "modules" / "tinyfix" / "dts" / "bindings"
           / "tinyfix,correction.yaml")
HEAD_MODEL = ModelInfo(model_crc=0x0BADF00D, n_classes=3, output_scale=0.1, n_channels=2,
                       n_features=4)
NAMES = ["idle", "wave", "tap", "circle", "shake"]


@pytest.fixture(scope="module")
def fitted_params(core):
    raw, y = logits_set(400, seed=1)
    return fit_classification(raw, y, LOGITS_MODEL, FitOptions(target_precision=0.9),
                              core=core).params


def every_stage_params(core):
    """A set using every field, including a head, negative values and background flags."""
    p = Params.identity(core, HEAD_MODEL)
    c = p.c
    c.flags = 0x7F
    c.output_kind = 1
    c.inv_temperature = 43691
    for k, (scale, bias, thr) in enumerate([(65536, -32768, 0), (70000, 16384, 19661),
                                            (1, -67108864, 32768)]):
        c.class_scale[k], c.class_bias[k], c.class_threshold[k] = scale, bias, thr
    c.class_flags[0] = 1
    c.vote.mode, c.vote.source, c.vote.threshold = 1, 1, 180
    c.vote.min_count, c.vote.window_ms, c.vote.suppression_ms = 4, 750, 2000
    c.anomaly.mode, c.anomaly.options, c.anomaly.class_index = 2, 1, 2
    c.anomaly.window, c.anomaly.warmup, c.anomaly.alpha_q8 = 32, 10, 1000
    c.input.fill_mode, c.input.stats_shift, c.input.clip_k_q8 = 1, 4, 640
    c.input.offset[0], c.input.offset[1] = -1 << 30, 12345
    c.input.gain[0], c.input.gain[1] = 1, 4194304
    c.adapt.learning_rate, c.adapt.clamp = 65536, 0
    c.n_features, c.head_rows = 4, 3
    for k in range(3):
        c.head.multiplier[k], c.head.shift[k] = 2147483647 - k, -31 + k
        c.head.bias[k] = (-1) ** k * (k << 28)
    for i in range(12):
        c.head.weights[i] = [-127, 127, 0, -1, 1, 64][i % 6]
    return p.seal()


def test_fitted_params_yaml_round_trips_to_the_same_blob(core, fitted_params, tmp_path):
    path = tmp_path / "params.yaml"
    params_io.write_params_yaml(path, fitted_params, NAMES)
    back = params_io.read_params_yaml(path, core, LOGITS_MODEL)
    assert back.encode() == fitted_params.encode()
    doc = yaml.safe_load(path.read_text())
    assert doc["model_crc"] == "0x5eed0005"
    assert doc["params_crc"] == f"0x{fitted_params.crc:08x}"
    assert doc["format_version"] == 2
    assert [c["name"] for c in doc["classes"]] == NAMES
    assert doc["inv_temperature"]["real"] * 65536 == doc["inv_temperature"]["q"]
    assert doc["classes"][0]["threshold"]["real"] * 32768 == doc["classes"][0]["threshold"]["q"]


def test_every_field_round_trips_through_yaml_and_overlay(core):
    p = every_stage_params(core)
    assert p.validate(HEAD_MODEL) == 0
    from_yaml = params_io.params_from_yaml(params_io.params_to_yaml(p), core, HEAD_MODEL)
    from_overlay = params_io.params_from_overlay(params_io.overlay_text(p), core)
    assert from_yaml.encode() == p.encode()
    assert from_overlay.encode() == p.encode()


def test_a_residual_head_round_trips_with_its_columns(core):
    p = every_stage_params(core)
    c = p.c
    c.head_columns = 2
    c.head.columns[0] = 0b1001  # features 0 and 3
    c.anomaly.min_dev, c.anomaly.score_shift = 3 * 65536, 7
    p.seal()
    assert p.validate(HEAD_MODEL) == 0
    text = params_io.params_to_yaml(p)
    assert yaml.safe_load(text)["head"]["columns"] == [0, 3]
    assert len(yaml.safe_load(text)["head"]["weights"][0]) == 2
    overlay = params_io.overlay_text(p)
    assert "head-column-mask = [09];" in overlay and "head-columns = <2>;" in overlay
    assert params_io.params_from_yaml(text, core, HEAD_MODEL).encode() == p.encode()
    assert params_io.params_from_overlay(overlay, core).encode() == p.encode()


int32s = st.integers(min_value=-(2**31), max_value=2**31 - 1)


@settings(max_examples=60, deadline=None)
@given(flags=st.integers(0, 0x7F), inv_t=int32s, bias=st.lists(int32s, min_size=3, max_size=3),
       thr=st.lists(st.integers(0, 65535), min_size=3, max_size=3),
       window=int32s, weights=st.lists(st.integers(-128, 127), min_size=12, max_size=12))
def test_any_field_values_round_trip_exactly(core, flags, inv_t, bias, thr, window, weights):
    p = every_stage_params(core)
    c = p.c
    c.flags, c.inv_temperature, c.vote.window_ms = flags, inv_t, window
    for k in range(3):
        c.class_bias[k], c.class_threshold[k] = bias[k], thr[k]
    for i, w in enumerate(weights):
        c.head.weights[i] = w
    p.seal()
    yaml_back = params_io.params_from_yaml(params_io.params_to_yaml(p), core)
    dt_back = params_io.params_from_overlay(params_io.overlay_text(p), core)
    assert yaml_back.encode() == p.encode() == dt_back.encode()


def test_overlay_is_a_root_node_with_the_binding_names(core, fitted_params):
    text = params_io.overlay_text(fitted_params, NAMES)
    assert "/ {\n\ttinyfix_params: tinyfix-params {" in text
    assert 'compatible = "tinyfix,correction";' in text
    assert "model-crc = <0x5eed0005>;" in text
    assert "(-" in text  # negative biases in parentheses
    props = {line.split("=")[0].strip() for line in text.splitlines()
             if " = " in line and not line.strip().startswith("/*")}
    binding = yaml.safe_load(BINDING.read_text())["properties"]
    assert props - {"compatible"} <= set(binding)


def test_every_binding_property_is_known_to_the_writer():
    binding = yaml.safe_load(BINDING.read_text())["properties"]
    from tinyfix.params_fields import BY_DT

    assert set(binding) - {"model-crc"} == set(BY_DT)


def test_overlay_writes_the_head_only_with_features(core, fitted_params):
    assert "\thead-" not in params_io.overlay_text(fitted_params)
    assert "input-offset" not in params_io.overlay_text(fitted_params)
    text = params_io.overlay_text(every_stage_params(core))
    assert "head-weights = [81 7f 00 ff 01 40" in text
    assert "head-shift = <(-31) (-30) (-29)>;" in text


def test_conf_is_sized_to_the_model(core, fitted_params):
    assert params_io.conf_text(fitted_params).splitlines()[1:] == [
        "CONFIG_TINYFIX=y", "CONFIG_TINYFIX_MAX_CLASSES=5"]
    lines = params_io.conf_text(every_stage_params(core), vote_frames=20).splitlines()
    assert "CONFIG_TINYFIX_MAX_FEATURES=4" in lines
    assert "CONFIG_TINYFIX_MAX_VOTE_FRAMES=20" in lines
    assert "CONFIG_TINYFIX_ADAPT=y" in lines
    assert not any("ANOMALY_WINDOW" in line for line in lines)  # 32 fits the default 64


def edited(core, params, change):
    doc = params_io.params_to_dict(params)
    change(doc)
    return params_io.params_from_dict(doc, core)


def test_an_edited_value_without_a_new_crc_is_refused(core, fitted_params):
    def bump(doc):
        doc["classes"][1]["bias"] = {"q": doc["classes"][1]["bias"]["q"] + 1}

    with pytest.raises(TinyfixError, match=r"params_crc .* does not match"):
        edited(core, fitted_params, bump)

    def bump_and_forget_crc(doc):
        bump(doc)
        del doc["params_crc"]

    p = edited(core, fitted_params, bump_and_forget_crc)
    assert p.c.class_bias[1] == fitted_params.c.class_bias[1] + 1
    assert p.validate(LOGITS_MODEL) == 0


def test_real_without_q_is_quantized_and_real_disagreeing_with_q_is_refused(core,
                                                                            fitted_params):
    def real_only(doc):
        doc["inv_temperature"] = {"real": 0.5}
        del doc["params_crc"]

    assert edited(core, fitted_params, real_only).c.inv_temperature == 32768

    def disagree(doc):
        doc["inv_temperature"]["real"] = 7.0

    with pytest.raises(TinyfixError, match=r"inv_temperature: real 7\.0 and q"):
        edited(core, fitted_params, disagree)


def test_damaged_files_are_refused_clearly(core, fitted_params, tmp_path):
    text = params_io.params_to_yaml(fitted_params)
    with pytest.raises(TinyfixError, match="not valid YAML"):
        params_io.params_from_yaml(text + "\n  - : [", core)
    with pytest.raises(TinyfixError, match="missing `vote`"):
        params_io.params_from_yaml(text.replace("vote:", "votes:"), core)
    with pytest.raises(TinyfixError, match="format version 9"):
        params_io.params_from_yaml(text.replace("format_version: 2", "format_version: 9"),
                                   core)
    other = ModelInfo(model_crc=1, n_classes=5, output_scale=0.25)
    with pytest.raises(TinyfixError, match="another model"):
        params_io.params_from_yaml(text, core, other)
    with pytest.raises(TinyfixError, match="cannot read"):
        params_io.read_params_yaml(tmp_path / "absent.yaml", core)
    with pytest.raises(TinyfixError, match="no tinyfix,correction node"):
        params_io.params_from_overlay("/ { };", core)


def test_write_outputs_writes_the_three_files_a_build_needs(core, fitted_params, tmp_path):
    paths = params_io.write_outputs(tmp_path / "out", fitted_params, NAMES)
    assert [p.name for p in paths] == ["params.yaml", "tinyfix.overlay", "tinyfix.conf"]
    assert params_io.read_params_yaml(paths[0], core).encode() == fitted_params.encode()
    overlay = params_io.params_from_overlay(paths[1].read_text(), core)
    assert overlay.encode() == fitted_params.encode()
    assert "CONFIG_TINYFIX=y" in paths[2].read_text()
