# SPDX-License-Identifier: Apache-2.0
"""TinyFix host tools: fit, evaluate and deliver output corrections for TFLite Micro models."""

__version__ = "0.1.0"
