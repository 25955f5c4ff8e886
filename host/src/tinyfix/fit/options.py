# SPDX-License-Identifier: Apache-2.0
"""What a fit may do and aim for. Defaults suit a few hundred samples or a few minutes of
stream; every figure the fit keeps or drops a stage on comes from the held-out part of the
calibration data, never from the evaluation set."""

from __future__ import annotations

from dataclasses import dataclass, field

# Tried in this order. "bias" re-fits the temperature with the offsets (bias-corrected
# temperature scaling): offsets fitted after a temperature leave it too warm.
CLASSIFICATION_STAGES = ("temperature", "prior", "bias", "vector", "thresholds")
# Also available on request (FitOptions.stages): offsets alone.
# "head" (the last-layer re-fit) joins, before the thresholds, whenever the data has the
# model's feature vectors.
# "quantization" (fitted to a float reference model, fit.quantization_stage) goes first
# whenever the fit is given that model's outputs.
ALL_CLASSIFICATION_STAGES = ("quantization", *CLASSIFICATION_STAGES, "bias_only", "head")
# "correction": output-only stages on frame labels from the event times, before voting.
STREAMING_STAGES = ("correction", "vote")
# With feature vectors, streaming also tries "head" (voting is then tuned on its outputs).
ALL_STREAMING_STAGES = ("head", "correction", "vote")


@dataclass(frozen=True)
class DeviceLimits:
    """Sizes of the firmware build the parameters go to (its CONFIG_TINYFIX_MAX_*). The host
    core is built larger; a set must stay inside the device's sizes or the host would
    evaluate something the device cannot run (a vote ring that drops frames, a refused
    anomaly window)."""

    max_vote_frames: int = 16
    max_anomaly_window: int = 64
    # Largest head (last-layer re-fit) the build takes, in features. The Kconfig default
    # is 0 (head compiled out); tinyfix.conf sets CONFIG_TINYFIX_MAX_FEATURES to the
    # model's feature count when the fit keeps a head, so the default here is the
    # option's range limit. Give the build's value to fit for a device that is not
    # rebuilt (SET_PARAMS only).
    max_features: int = 4096
    # Largest head the build stores, in int8 weights (CONFIG_TINYFIX_MAX_HEAD_WEIGHTS;
    # None: any whole layer). A device's INFO reports it.
    max_head_weights: int | None = None


@dataclass(frozen=True)
class FitOptions:
    # Share of the calibration data held out to decide which stages to keep.
    heldout_fraction: float = 0.3
    seed: int = 0
    # L2 strength toward "no change": penalty = l2 / N * sum((theta - theta0)^2), added to
    # the mean negative log-likelihood, so it fades as data grow.
    l2: float = 1.0
    # Smallest relative drop of held-out NLL a scaling stage must bring.
    min_nll_gain: float = 0.005
    # None: detect from the data; else "logits" or "probs".
    output_kind: str | None = None
    # Stages to try, in order (a subset of CLASSIFICATION_STAGES / STREAMING_STAGES).
    stages: tuple[str, ...] | None = None
    # Classification: per-class confidence thresholds reach at least this precision.
    target_precision: float | None = None
    # Class mix the model was trained on, if known (label-shift correction); else the mix
    # the model implies on the calibration inputs.
    source_priors: tuple[float, ...] | None = None
    # Streaming: most false accepts per hour allowed while the false-reject rate is minimised;
    # the upper end of the rate's interval at this confidence must meet it (fit.fa_rate).
    target_fa_per_hour: float = 2.0
    fa_confidence: float = 0.9
    # Streaming: contiguous time blocks the calibration stream is cross-validated over.
    stream_blocks: int = 5
    # Anomaly: most false alarms per hour allowed.
    target_false_alarms_per_hour: float = 1.0
    # Autoencoders on windows without times: most normal windows flagged.
    target_false_alarm_rate: float = 0.01
    device: DeviceLimits = field(default_factory=DeviceLimits)
    # Head re-fit: most bytes the head may take in the parameter set (weights and per-row
    # integers); None: a quarter of the model's own layer, at least 1 KiB (fit.head).
    head_budget_bytes: int | None = None
    # Streaming head re-fit: the model's input window in ms (None: the input's time steps
    # at sample_rate_hz), for labelling frames from event times.
    frame_window_ms: int | None = None
    sample_rate_hz: float = 50.0
    # Core variant that evaluates candidates: "fixed" (every Cortex-M) or "float".
    core_variant: str = "fixed"
