# SPDX-License-Identifier: Apache-2.0
"""The firmware's user-model scenario runs on files the host made (tests/app/models/): they
must be what the zoo builder, TFLM and the C core give today, or the device would be checked
against stale expectations."""

import json

import firmware_test_model as ftm


def test_the_firmware_test_model_and_its_expectations_are_current():
    assert ftm.main(["--check"]) == 0, "run: .venv/bin/python tests/host/firmware_test_model.py"


def test_the_test_model_is_large_enough_to_need_chunks():
    expected = json.loads(ftm.EXPECTED.read_text())
    assert expected["input_bytes"] >= 27 * 1024  # beyond any frame the app allows (4096)
    assert len(expected["raw"]) == ftm.N_INPUTS and len(expected["features"][0]) > 0
