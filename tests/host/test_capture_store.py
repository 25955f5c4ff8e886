# SPDX-License-Identifier: Apache-2.0
"""The capture file keeps every sample received, survives a torn write, and resumes."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinyfix.capture_store import CaptureFileError, CaptureRecord, CaptureStore

HEADER = {"model_crc": "0x228754ba", "data": "abc", "raw_bytes": 6}


def record(i: int, feat: bytes = b"") -> CaptureRecord:
    return CaptureRecord(i, i % 6, 1000 + i, 50 + i, bytes([i % 256] * 6), feat)


def test_records_survive_a_reopen(tmp_path):
    path = tmp_path / "c.tfcap"
    with CaptureStore(path, HEADER) as store:
        for i in range(5):
            store.append(record(i, b"\x01\x02"))
    with CaptureStore(path, HEADER) as again:
        assert again.done == set(range(5))
        assert again.records[3] == record(3, b"\x01\x02")
        again.append(record(5))
    assert CaptureStore(path, HEADER).done == set(range(6))


@given(st.integers(min_value=1, max_value=27))
def test_a_torn_last_record_is_dropped_and_the_rest_kept(tmp_path_factory, cut):
    path = tmp_path_factory.mktemp("torn") / "c.tfcap"
    with CaptureStore(path, HEADER) as store:
        for i in range(4):
            store.append(record(i))
    data = path.read_bytes()
    path.write_bytes(data[:-cut])  # the process died inside the last record
    with CaptureStore(path, HEADER) as store:
        assert store.done == {0, 1, 2}
        store.append(record(3))
    assert CaptureStore(path, HEADER).done == {0, 1, 2, 3}


def test_damage_in_the_middle_is_an_error_not_a_silent_skip(tmp_path):
    path = tmp_path / "c.tfcap"
    with CaptureStore(path, HEADER) as store:
        for i in range(4):
            store.append(record(i))
    data = bytearray(path.read_bytes())
    data[-40] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CaptureFileError, match="damaged"):
        CaptureStore(path, HEADER)


def test_a_file_from_another_model_is_refused(tmp_path):
    path = tmp_path / "c.tfcap"
    CaptureStore(path, HEADER).close()
    with pytest.raises(CaptureFileError, match="model_crc"):
        CaptureStore(path, {**HEADER, "model_crc": "0x1"})
