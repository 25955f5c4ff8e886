# SPDX-License-Identifier: Apache-2.0
"""Figures of merit for before/after tables: classification (accuracy, macro-F1, ECE,
reliability diagram, confusion matrix) and streaming detection (false accepts per hour,
false-reject rate), as issue 5 defines them.

These functions only score decisions; they never compute a correction. The decisions come
from the C core (tinyfix.fit.through_core) or, for "before", from the raw model outputs.

A prediction of -1 (TINYFIX_NO_DECISION) is never correct: it lowers accuracy and counts as a
miss for the true class in F1, and it is left out of calibration (ECE) because it carries no
claim.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tinyfix.errors import TinyfixError

ECE_BINS = 15
HIT_TOLERANCE_MS = 1000  # a detection may come up to this long after the event ends
MS_PER_HOUR = 3_600_000
NO_DECISION = -1


def _labels(values: ArrayLike, what: str) -> NDArray[np.int64]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise TinyfixError(f"{what}: expected a 1-D array, got shape {arr.shape}")
    return arr.astype(np.int64)


def _pair(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    t, p = _labels(y_true, "labels"), _labels(y_pred, "predictions")
    if t.shape != p.shape:
        raise TinyfixError(f"{t.size} labels but {p.size} predictions")
    return t, p


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of samples whose prediction is the label (no decision counts as wrong)."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(t == p)) if t.size else float("nan")


def coverage(y_pred: ArrayLike) -> float:
    """Fraction of samples with a decision."""
    p = _labels(y_pred, "predictions")
    return float(np.mean(p != NO_DECISION)) if p.size else float("nan")


def decision_precision(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of decisions that are right (NaN when nothing was decided)."""
    t, p = _pair(y_true, y_pred)
    decided = p != NO_DECISION
    return float(np.mean(t[decided] == p[decided])) if decided.any() else float("nan")


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int,
                     with_no_decision: bool = False) -> NDArray[np.int64]:
    """Counts, rows = true class, columns = predicted class; with `with_no_decision` an
    extra last column counts samples without a decision (else they are left out)."""
    t, p = _pair(y_true, y_pred)
    if t.size and (t.min() < 0 or t.max() >= n_classes):
        raise TinyfixError(f"labels must be in [0, {n_classes - 1}]")
    if p.size and (p.min() < NO_DECISION or p.max() >= n_classes):
        raise TinyfixError(f"predictions must be in [-1, {n_classes - 1}]")
    cols = n_classes + 1 if with_no_decision else n_classes
    out = np.zeros((n_classes, cols), dtype=np.int64)
    decided = p != NO_DECISION
    np.add.at(out, (t[decided], p[decided]), 1)
    if with_no_decision:
        np.add.at(out, (t[~decided], n_classes), 1)
    return out


def macro_f1(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> float:
    """Unweighted mean of per-class F1 = 2TP / (2TP + FP + FN), over the classes that occur
    in the labels or the predictions."""
    cm = confusion_matrix(y_true, y_pred, n_classes, with_no_decision=True)
    tp = np.diag(cm[:, :n_classes]).astype(float)
    fn = cm.sum(axis=1) - tp
    fp = cm[:, :n_classes].sum(axis=0) - tp
    present = (cm.sum(axis=1) > 0) | (cm[:, :n_classes].sum(axis=0) > 0)
    if not present.any():
        return float("nan")
    f1 = 2 * tp[present] / (2 * tp[present] + fp[present] + fn[present])
    return float(np.mean(f1))


@dataclass(frozen=True)
class ReliabilityDiagram:
    """Per confidence bin: edges (bins + 1), samples, mean confidence and accuracy (NaN for
    an empty bin)."""

    edges: NDArray[np.float64]
    count: NDArray[np.int64]
    confidence: NDArray[np.float64]
    accuracy: NDArray[np.float64]

    @property
    def ece(self) -> float:
        n = int(self.count.sum())
        if n == 0:
            return float("nan")
        used = self.count > 0
        gaps = np.abs(self.accuracy[used] - self.confidence[used])
        return float(np.sum(gaps * self.count[used]) / n)


def reliability_diagram(confidence: ArrayLike, correct: ArrayLike,
                        n_bins: int = ECE_BINS) -> ReliabilityDiagram:
    """Equal-width bins over [0, 1] of the top-class confidence; bin i holds
    (i/n, (i+1)/n], and bin 0 also holds a confidence of exactly 0."""
    conf = np.asarray(confidence, dtype=float)
    ok = np.asarray(correct, dtype=bool)
    if conf.shape != ok.shape or conf.ndim != 1:
        raise TinyfixError("confidence and correctness must be 1-D arrays of one length")
    if conf.size and (not np.all(np.isfinite(conf)) or conf.min() < 0 or conf.max() > 1):
        raise TinyfixError("confidence must be finite and in [0, 1]")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, weights=conf, minlength=n_bins) / count
        mean_acc = np.bincount(index, weights=ok.astype(float), minlength=n_bins) / count
    return ReliabilityDiagram(edges, count, mean_conf, mean_acc)


def expected_calibration_error(confidence: ArrayLike, correct: ArrayLike,
                               n_bins: int = ECE_BINS) -> float:
    """ECE: sum over bins of |accuracy - mean confidence| weighted by the bin's share."""
    return reliability_diagram(confidence, correct, n_bins).ece


def classification_metrics(y_true: ArrayLike, y_pred: ArrayLike, confidence: ArrayLike,
                           n_classes: int) -> dict[str, float]:
    """accuracy, macro_f1 and ece (over samples with a decision), as report.json wants."""
    t, p = _pair(y_true, y_pred)
    conf = np.asarray(confidence, dtype=float)
    decided = p != NO_DECISION
    return {
        "accuracy": accuracy(t, p),
        "macro_f1": macro_f1(t, p, n_classes),
        "ece": expected_calibration_error(conf[decided], t[decided] == p[decided]),
    }


# ---- Streaming -------------------------------------------------------------------------


@dataclass(frozen=True)
class Events:
    """Ground truth of a stream: event e of class label[e] lasts [start_ms[e], end_ms[e]]."""

    start_ms: NDArray[np.int64]
    end_ms: NDArray[np.int64]
    label: NDArray[np.int64]

    @classmethod
    def of(cls, start_ms: ArrayLike, end_ms: ArrayLike, label: ArrayLike) -> Events:
        s, e, lab = (_labels(v, w) for v, w in
                     ((start_ms, "event_start_ms"), (end_ms, "event_end_ms"),
                      (label, "event_label")))
        if not s.size == e.size == lab.size:
            raise TinyfixError(
                f"event arrays differ in length: start {s.size}, end {e.size}, label {lab.size}")
        if np.any(e < s):
            raise TinyfixError("an event ends before it starts (event_end_ms < event_start_ms)")
        return cls(s, e, lab)

    def __len__(self) -> int:
        return int(self.label.size)

    def within(self, t0: int, t1: int) -> Events:
        """Events that start in [t0, t1)."""
        keep = (self.start_ms >= t0) & (self.start_ms < t1)
        return Events(self.start_ms[keep], self.end_ms[keep], self.label[keep])


@dataclass(frozen=True)
class StreamScore:
    hits: int
    false_accepts: int
    events: int
    duration_ms: int

    @property
    def missed(self) -> int:
        return self.events - self.hits

    @property
    def false_accepts_per_hour(self) -> float:
        if self.duration_ms <= 0:
            return 0.0 if self.false_accepts == 0 else float("inf")
        return self.false_accepts * MS_PER_HOUR / self.duration_ms

    @property
    def false_reject_rate(self) -> float:
        return self.missed / self.events if self.events else 0.0

    def as_dict(self) -> dict[str, float]:
        return {"false_accepts_per_hour": self.false_accepts_per_hour,
                "false_reject_rate": self.false_reject_rate}


def match_detections(det_t_ms: ArrayLike, det_label: ArrayLike, events: Events
                     ) -> NDArray[np.int64]:
    """For each detection, the index of the event it hits, or -1 for a false accept: a
    detection of class c at t hits the earliest event of c not hit yet with t in
    [start, end + 1000 ms]."""
    t, lab = _pair(det_t_ms, det_label)
    order = np.argsort(t, kind="stable")
    hit = np.zeros(len(events), dtype=bool)
    matched = np.full(t.size, -1, dtype=np.int64)
    for i in order:
        open_ = (~hit & (events.label == lab[i]) & (events.start_ms <= t[i])
                 & (t[i] <= events.end_ms + HIT_TOLERANCE_MS))
        if open_.any():
            candidates = np.flatnonzero(open_)
            e = candidates[np.argmin(events.start_ms[candidates])]
            hit[e] = True
            matched[i] = e
    return matched


def score_detections(det_t_ms: ArrayLike, det_label: ArrayLike, events: Events,
                     duration_ms: int) -> StreamScore:
    """Hits and false accepts of detections (match_detections) over a stream."""
    matched = match_detections(det_t_ms, det_label, events)
    hits = int((matched >= 0).sum())
    return StreamScore(hits, int(matched.size - hits), len(events), int(duration_ms))


def stream_duration_ms(t_ms: ArrayLike) -> int:
    t = _labels(t_ms, "t_ms")
    return int(t[-1] - t[0]) if t.size else 0


def transition_detections(top_class: ArrayLike, t_ms: ArrayLike, background: ArrayLike
                          ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Detections of a detector without voting: one each time the top class becomes a
    non-background class (the first frame counts if its top class is not background).
    A top class of -1 (no decision) is treated as background."""
    top, t = _pair(top_class, t_ms)
    is_event = (top >= 0) & ~np.isin(top, np.asarray(background, dtype=np.int64))
    previous = np.concatenate([[-2], top[:-1]])
    start = is_event & (top != previous)
    return t[start], top[start]


def streaming_metrics(det_t_ms: ArrayLike, det_label: ArrayLike, events: Events,
                      t_ms: ArrayLike) -> dict[str, float]:
    """false_accepts_per_hour and false_reject_rate over the stream whose frames are t_ms."""
    return score_detections(det_t_ms, det_label, events, stream_duration_ms(t_ms)).as_dict()


# ---- Anomaly alarms ----------------------------------------------------------------------


def _runs(flags: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """[start, stop) index ranges of consecutive True values."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True))


def alarm_metrics(alarm: ArrayLike, t_ms: ArrayLike, anomalous: ArrayLike | None = None
                  ) -> dict[str, float]:
    """An alarm is a run of consecutive flagged frames. It is a detection if it overlaps a
    run of truly anomalous frames, else a false alarm. false_alarms_per_hour over the
    stream's duration; detection_rate = anomalous runs with a flagged frame / anomalous
    runs (reported only when `anomalous` is given)."""
    flags = np.asarray(alarm, dtype=bool)
    t = _labels(t_ms, "t_ms")
    truth = np.zeros_like(flags) if anomalous is None else np.asarray(anomalous, dtype=bool)
    if not flags.shape == truth.shape == t.shape:
        raise TinyfixError("alarm flags, times and anomaly labels differ in length")
    false_alarms = sum(1 for a, b in _runs(flags) if not truth[a:b].any())
    duration = stream_duration_ms(t)
    out = {"false_alarms_per_hour": (false_alarms * MS_PER_HOUR / duration if duration > 0
                                     else (0.0 if false_alarms == 0 else float("inf")))}
    if anomalous is not None:
        runs = _runs(truth)
        out["detection_rate"] = (sum(1 for a, b in runs if flags[a:b].any()) / len(runs)
                                 if runs else float("nan"))
    return out


@dataclass(frozen=True)
class ScoreHistogram:
    """Anomaly scores of normal and anomalous windows in common bins, and a threshold."""

    edges: NDArray[np.float64]
    normal: NDArray[np.int64]
    anomalous: NDArray[np.int64]
    threshold: float


def score_histogram(score: ArrayLike, y: ArrayLike, threshold: float, bins: int = 40
                    ) -> ScoreHistogram:
    s = np.asarray(score, dtype=np.float64)
    labels = np.asarray(y)
    hi = float(np.percentile(s, 99.5)) if s.size else 1.0
    edges = np.linspace(0.0, max(hi, threshold if np.isfinite(threshold) else 0.0, 1e-9) * 1.05,
                        bins + 1)
    return ScoreHistogram(edges, np.histogram(np.clip(s[labels == 0], 0, edges[-1]), edges)[0],
                          np.histogram(np.clip(s[labels == 1], 0, edges[-1]), edges)[0],
                          threshold)
