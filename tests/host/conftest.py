# SPDX-License-Identifier: Apache-2.0
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tinyfix.core import Core, ModelInfo


@pytest.fixture(scope="session")
def core() -> Core:
    return Core("fixed")


@pytest.fixture(scope="session")
def core_float() -> Core:
    return Core("float")


@pytest.fixture(scope="session")
def model12() -> ModelInfo:
    """A keyword-spotting-like int8 logits model: 12 classes."""
    return ModelInfo(model_crc=0xC0FFEE12, n_classes=12, output_type="int8",
                     output_scale=0.0921, output_zero_point=-7)
