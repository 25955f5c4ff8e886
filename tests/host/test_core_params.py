# SPDX-License-Identifier: Apache-2.0
"""Parameter sets: portable blob, CRC, validation with distinct errors, atomic apply."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_core_correct import build

from tinyfix.core import Core, Corrector, Params, q16
from tinyfix.errors import CoreError


@given(st.lists(st.integers(min_value=-1024 * 65536, max_value=1024 * 65536), min_size=12,
                max_size=12),
       st.lists(st.integers(min_value=0, max_value=32768), min_size=12, max_size=12),
       st.integers(min_value=256, max_value=64 * 65536))
def test_blob_round_trips_and_keeps_the_crc(core, model12, bias, thr, inv_t):
    p = build(core, model12, class_bias=bias, class_threshold=thr, inv_temperature=inv_t)
    blob = p.encode()
    q = Params.decode(core, blob)
    assert q.encode() == blob
    assert q.crc == p.crc and q.validate(model12) == 0


def test_blob_size_depends_on_counts_not_on_the_build(core, model12):
    size = core.lib.tinyfix_params_encoded_size
    blob = Params.identity(core, model12).encode()
    assert len(blob) == size(12, 0, 0, 0, 0)
    # scale, bias (4 + 4), threshold and prior (2 + 2) and flags (1) per class; offset, gain,
    # reference mean and std (4 x 4) per channel; a head adds a bias, a multiplier and a
    # shift per row and a weight per row and feature (a residual: per row and column, and a
    # bit per feature).
    assert size(13, 0, 0, 0, 0) - size(12, 0, 0, 0, 0) == 13
    assert size(12, 1, 0, 0, 0) - size(12, 0, 0, 0, 0) == 16
    assert size(12, 0, 10, 12, 0) - size(12, 0, 0, 0, 0) == 12 * (4 + 4 + 4) + 12 * 10
    assert size(12, 0, 10, 12, 3) - size(12, 0, 0, 0, 0) == 12 * (4 + 4 + 4) + 12 * 3 + 2
    assert size(2, 0, 10, 1, 0) - size(2, 0, 0, 0, 0) == 12 + 10  # a binary model's one row


@given(st.data())
def test_any_flipped_bit_is_caught(core, model12, data):
    blob = bytearray(build(core, model12, class_bias=[q16(0.5)] * 12).encode())
    i = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
    blob[i] ^= 1 << data.draw(st.integers(min_value=0, max_value=7))
    try:
        q = Params.decode(core, bytes(blob))
    except CoreError as exc:  # magic, version, counts or length broken
        assert exc.code in (core.lib.TINYFIX_ERR_FORMAT, core.lib.TINYFIX_ERR_VERSION,
                            core.lib.TINYFIX_ERR_CAPACITY)
        return
    assert q.validate(model12) != 0


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda c: setattr(c, "format_version", 7), "TINYFIX_ERR_VERSION"),
        (lambda c: setattr(c, "model_crc", 0xBAD), "TINYFIX_ERR_MODEL"),
        (lambda c: setattr(c, "inv_temperature", 0), "TINYFIX_ERR_RANGE"),
        (lambda c: c.class_bias.__setitem__(3, 2000 * 65536), "TINYFIX_ERR_RANGE"),
        (lambda c: c.class_threshold.__setitem__(0, 40000), "TINYFIX_ERR_RANGE"),
        (lambda c: setattr(c.vote, "min_count", 0), "TINYFIX_ERR_RANGE"),
        (lambda c: setattr(c.anomaly, "class_index", 12), "TINYFIX_ERR_RANGE"),
        (lambda c: setattr(c, "flags", 0x100), "TINYFIX_ERR_RANGE"),
        (lambda c: setattr(c, "n_classes", 11), "TINYFIX_ERR_CLASSES"),
        (lambda c: setattr(c, "n_classes", 65), "TINYFIX_ERR_CAPACITY"),
        (lambda c: setattr(c, "flags", 0x01 | 0x02), "TINYFIX_ERR_UNSUPPORTED"),
    ],
)
def test_bad_sets_get_their_own_error_and_the_old_set_stays(core, model12, change, error):
    good = build(core, model12, class_bias=[q16(0.25)] * 12)
    corr = Corrector(core, model12, good)
    raw = np.arange(12) - 6
    before = corr.process(raw)
    bad = good.copy()
    change(bad.c)
    bad.seal()
    assert corr.try_set_params(bad) == getattr(core.lib, error)
    after = corr.process(raw)
    assert list(after.logit) == list(before.logit)


def test_a_set_with_a_stale_crc_is_refused(core, model12):
    p = Params.identity(core, model12)
    p.c.class_bias[0] = q16(1.0)  # changed after sealing
    assert p.validate(model12) == core.lib.TINYFIX_ERR_CRC


def test_truncated_or_padded_blobs_are_malformed(core, model12):
    blob = Params.identity(core, model12).encode()
    for broken in (blob[:-1], blob + b"\0", b"XXXX" + blob[4:], b""):
        with pytest.raises(CoreError) as exc:
            Params.decode(core, broken)
        assert exc.value.code == core.lib.TINYFIX_ERR_FORMAT


def test_error_texts_are_distinct(core):
    texts = {core.ffi.string(core.lib.tinyfix_strerror(-i)) for i in range(11)}
    assert len(texts) == 11


def test_a_set_made_on_the_host_passes_a_device_sized_build(core, model12):
    device = Core("device")
    blob = Params.identity(core, model12).encode()
    assert Params.decode(device, blob).validate(model12) == 0


def test_a_device_refuses_what_exceeds_its_capacity(core, model12):
    big = build(core, model12, anomaly__window=200, anomaly__warmup=8)
    device_set = Params.decode(Core("device"), big.encode())
    assert device_set.validate(model12) == core.lib.TINYFIX_ERR_RANGE


@given(st.integers(min_value=2, max_value=64), st.integers(min_value=0, max_value=16),
       st.integers(min_value=0, max_value=4096), st.data())
def test_encoded_size_follows_the_documented_layout(core, classes, channels, features, data):
    # TINYFIX_PARAMS_ENCODED_SIZE() and _HEAD_SIZE() in tinyfix.h size device buffers so.
    rows = data.draw(st.sampled_from([1, classes]))
    columns = data.draw(st.integers(min_value=0, max_value=features))
    if not features:
        head = 0
    elif columns:
        head = rows * (12 + columns) + (features + 7) // 8
    else:
        head = rows * (12 + features)
    expected = 97 + 13 * classes + 16 * channels + head
    size = core.lib.tinyfix_params_encoded_size(classes, channels, features,
                                                rows if features else 0, columns)
    assert size == expected
