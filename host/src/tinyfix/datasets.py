# SPDX-License-Identifier: Apache-2.0
"""Load the data formats of issue 5 and split them deterministically.

Classification:
  - `.npz` with `x` (N, *input shape) model inputs or `scores` (N, C) raw outputs already
    recorded from the device, `y` (N,) int labels, optional `class_names` (C,).
  - a folder with one `<class>.npy` / `<class>.csv` per class (first axis / rows are the
    samples, a CSV row is one flattened sample), or one subfolder per class holding one
    `.npy` / `.csv` file per sample. Classes are the sorted file or folder names.
Streaming `.npz`: `t_ms` (T,) non-decreasing, `x` (T, *input shape) or `scores` (T, C),
`event_start_ms`, `event_end_ms`, `event_label` (E,), `class_names` (C,), `background`
(names, or indices, of classes that are never events).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tinyfix.errors import TinyfixError
from tinyfix.metrics import HIT_TOLERANCE_MS, Events

STREAM_KEYS = ("t_ms", "event_start_ms", "event_end_ms", "event_label", "class_names",
               "background")


@dataclass(frozen=True)
class ClassificationData:
    """Either `x` (model inputs) or `scores` (raw outputs) is set; `y` are labels.
    `names_given` is False when the file names no classes and `class_names` only counts
    the labels it uses."""

    y: NDArray[np.int64]
    class_names: tuple[str, ...]
    x: NDArray | None = None
    scores: NDArray | None = None
    names_given: bool = True
    # With recorded scores: the int8 feature vectors recorded with them (tinyfix capture),
    # for the head stage; None when not recorded.
    features: NDArray | None = None

    def __len__(self) -> int:
        return int(self.y.size)

    def subset(self, index: NDArray[np.int64]) -> ClassificationData:
        return ClassificationData(
            self.y[index], self.class_names,
            None if self.x is None else self.x[index],
            None if self.scores is None else self.scores[index], self.names_given,
            None if self.features is None else self.features[index])

    def names_for_model(self, n_classes: int) -> tuple[str, ...]:
        """The names of a model's n_classes outputs. Unnamed data may label only some of
        them (a field set without examples of a rare class); named data must name all."""
        if self.y.size and int(self.y.max()) >= n_classes:
            raise TinyfixError(f"labels go up to {int(self.y.max())} but the model has "
                               f"{n_classes} classes (0..{n_classes - 1})")
        if not self.names_given:
            return tuple(str(i) for i in range(n_classes))
        if len(self.class_names) != n_classes:
            raise TinyfixError(f"the data names {len(self.class_names)} classes "
                               f"({', '.join(self.class_names)}) but the model has "
                               f"{n_classes}")
        return self.class_names


@dataclass(frozen=True)
class StreamingData:
    t_ms: NDArray[np.int64]
    events: Events
    class_names: tuple[str, ...]
    background: tuple[int, ...]
    x: NDArray | None = None
    scores: NDArray | None = None
    features: NDArray | None = None  # recorded with the scores, as for ClassificationData

    def __len__(self) -> int:
        return int(self.t_ms.size)

    def between(self, t0: int, t1: int) -> StreamingData:
        """Frames in [t0, t1) and the events that start there."""
        keep = (self.t_ms >= t0) & (self.t_ms < t1)
        return StreamingData(
            self.t_ms[keep], self.events.within(t0, t1), self.class_names, self.background,
            None if self.x is None else self.x[keep],
            None if self.scores is None else self.scores[keep],
            None if self.features is None else self.features[keep])


# ---- Loading ----------------------------------------------------------------------------


def open_npz(path: Path) -> dict[str, NDArray]:
    """Every array of an .npz file, or a TinyfixError that says what is wrong with it."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise TinyfixError(f"{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise TinyfixError(f"{path}: not a readable .npz file ({exc})") from None


def _require(data: dict[str, NDArray], keys: tuple[str, ...], path: Path) -> None:
    missing = [k for k in keys if k not in data]
    if missing:
        raise TinyfixError(f"{path}: missing key(s) {', '.join(missing)} "
                           f"(found: {', '.join(sorted(data)) or 'none'})")


def _finite(arr: NDArray, what: str, path: Path) -> None:
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        bad = int(np.sum(~np.isfinite(arr)))
        raise TinyfixError(f"{path}: {what} holds {bad} NaN or infinite value(s)")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TinyfixError(f"{path}: {what} must be numeric, not {arr.dtype}")


def _int_array(arr: NDArray, what: str, path: Path) -> NDArray[np.int64]:
    arr = np.asarray(arr)
    if arr.ndim != 1:
        raise TinyfixError(f"{path}: {what} must be 1-D, got shape {arr.shape}")
    _finite(arr, what, path)
    if np.issubdtype(arr.dtype, np.floating) and np.any(arr != np.round(arr)):
        raise TinyfixError(f"{path}: {what} must hold whole numbers")
    return arr.astype(np.int64)


def _inputs(data: dict[str, NDArray], n: int, path: Path, what: str
            ) -> tuple[NDArray | None, NDArray | None]:
    if "x" not in data and "scores" not in data:
        raise TinyfixError(f"{path}: needs `x` (model inputs) or `scores` (raw outputs)")
    out: dict[str, NDArray] = {}
    for key in ("x", "scores"):
        if key in data:
            arr = data[key]
            if arr.ndim == 0:
                raise TinyfixError(f"{path}: `{key}` must be ({what}, ...), got a scalar")
            if arr.shape[0] != n:
                raise TinyfixError(
                    f"{path}: `{key}` has {arr.shape[0]} rows but there are {n} {what}")
            _finite(arr, f"`{key}`", path)
            out[key] = arr
    if "scores" in out and out["scores"].ndim != 2:
        raise TinyfixError(f"{path}: `scores` must be ({what}, classes), got "
                           f"{out['scores'].shape}")
    return out.get("x"), out.get("scores")


def _names(data: dict[str, NDArray], n_classes: int, path: Path) -> tuple[str, ...]:
    if "class_names" not in data:
        return tuple(str(i) for i in range(n_classes))
    names = tuple(str(s) for s in np.asarray(data["class_names"]).ravel())
    if len(set(names)) != len(names):
        raise TinyfixError(f"{path}: class_names has duplicates")
    return names


def _check_labels(y: NDArray[np.int64], n_classes: int, what: str, path: Path) -> None:
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise TinyfixError(f"{path}: {what} must be class indices in [0, {n_classes - 1}], "
                           f"found {int(y.min())}..{int(y.max())}")


def load_classification(path: str | Path) -> ClassificationData:
    """A classification `.npz` file or class folder (see the module docstring)."""
    path = Path(path)
    if path.is_dir():
        return _load_folder(path)
    data = open_npz(path)
    _require(data, ("y",), path)
    y = _int_array(data["y"], "`y`", path)
    x, scores = _inputs(data, y.size, path, "labels")
    n_classes = scores.shape[1] if scores is not None else int(y.max(initial=-1)) + 1
    names = _names(data, n_classes, path)
    if scores is not None and len(names) != scores.shape[1]:
        raise TinyfixError(f"{path}: {len(names)} class_names but `scores` has "
                           f"{scores.shape[1]} columns")
    _check_labels(y, len(names), "`y`", path)
    return ClassificationData(y, names, x, scores,
                              names_given="class_names" in data or scores is not None,
                              features=_features(data, scores, path))


def _features(data: dict[str, NDArray], scores: NDArray | None, path: Path) -> NDArray | None:
    """Recorded int8 feature vectors (N, F), one row per recorded score."""
    if "features" not in data:
        return None
    feats = np.asarray(data["features"])
    if scores is None or feats.ndim != 2 or feats.shape[0] != scores.shape[0]:
        raise TinyfixError(f"{path}: `features` must be (N, F) beside `scores` (N, C)")
    if feats.dtype != np.int8:
        raise TinyfixError(f"{path}: `features` must be int8, as the device sends them")
    return feats


ANOMALY_CLASSES = ("normal", "anomaly")


def load_anomaly(path: str | Path) -> ClassificationData:
    """An autoencoder's data: a classification `.npz` with `x` (the model's inputs) and
    `y` 0 = normal, 1 = anomaly, or no `y` (all normal)."""
    path = Path(path)
    data = open_npz(path)
    if "x" not in data:
        raise TinyfixError(f"{path}: an autoencoder needs `x`, the inputs it reconstructs")
    n = int(np.asarray(data["x"]).shape[0]) if np.asarray(data["x"]).ndim else 0
    y = _int_array(data["y"], "`y`", path) if "y" in data else np.zeros(n, dtype=np.int64)
    x, _ = _inputs(data, y.size, path, "labels")
    _check_labels(y, 2, "`y` (0 normal, 1 anomaly)", path)
    return ClassificationData(y, ANOMALY_CLASSES, x, None)


def _read_sample_file(path: Path) -> NDArray:
    try:
        if path.suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            arr = np.loadtxt(path, delimiter=",", ndmin=2)
    except (OSError, ValueError) as exc:
        raise TinyfixError(f"{path}: cannot read ({exc})") from None
    _finite(arr, "the data", path)
    return arr


def _load_folder(root: Path) -> ClassificationData:
    entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    files = [p for p in entries if p.is_file() and p.suffix in (".npy", ".csv")]
    dirs = [p for p in entries if p.is_dir()]
    if files and dirs:
        raise TinyfixError(f"{root}: mix of class files and class folders; use one form")
    if not files and not dirs:
        raise TinyfixError(f"{root}: no .npy/.csv class files or class folders")
    xs: list[NDArray] = []
    ys: list[int] = []
    if files:
        names = tuple(p.stem for p in files)
        for label, path in enumerate(files):
            arr = _read_sample_file(path)
            xs.extend(arr)
            ys.extend([label] * len(arr))
    else:
        names = tuple(p.name for p in dirs)
        for label, folder in enumerate(dirs):
            samples = sorted(p for p in folder.iterdir() if p.suffix in (".npy", ".csv"))
            if not samples:
                raise TinyfixError(f"{folder}: no .npy/.csv sample files")
            for path in samples:
                arr = _read_sample_file(path)
                if path.suffix == ".csv" and arr.shape[0] == 1:
                    arr = arr[0]
                xs.append(arr)
                ys.append(label)
    if len(set(names)) != len(names):
        raise TinyfixError(f"{root}: two class files share a name")
    shapes = {a.shape for a in xs}
    if len(shapes) != 1:
        raise TinyfixError(f"{root}: samples differ in shape: {sorted(shapes)}")
    return ClassificationData(np.array(ys, dtype=np.int64), names, x=np.stack(xs))


def _background(raw: NDArray, names: tuple[str, ...], path: Path) -> tuple[int, ...]:
    values = np.asarray(raw).ravel()
    out: list[int] = []
    for v in values:
        if isinstance(v, (str, np.str_)):
            if str(v) not in names:
                raise TinyfixError(f"{path}: background class {v!r} is not in class_names")
            out.append(names.index(str(v)))
        else:
            if not 0 <= int(v) < len(names):
                raise TinyfixError(f"{path}: background index {int(v)} out of range")
            out.append(int(v))
    return tuple(sorted(set(out)))


def load_streaming(path: str | Path) -> StreamingData:
    """A streaming `.npz` file (see the module docstring)."""
    path = Path(path)
    data = open_npz(path)
    _require(data, STREAM_KEYS, path)
    t = _int_array(data["t_ms"], "`t_ms`", path)
    if np.any(np.diff(t) < 0):
        raise TinyfixError(f"{path}: `t_ms` must be in time order (non-decreasing)")
    x, scores = _inputs(data, t.size, path, "timestamps")
    names = _names(data, 0, path)
    if scores is not None and len(names) != scores.shape[1]:
        raise TinyfixError(f"{path}: {len(names)} class_names but `scores` has "
                           f"{scores.shape[1]} columns")
    columns = [_int_array(data[k], f"`{k}`", path)
               for k in ("event_start_ms", "event_end_ms", "event_label")]
    try:
        events = Events.of(*columns)
    except TinyfixError as exc:
        raise TinyfixError(f"{path}: {exc}") from None
    _check_labels(events.label, len(names), "`event_label`", path)
    background = _background(data["background"], names, path)
    clash = sorted(set(events.label.tolist()) & set(background))
    if clash:
        raise TinyfixError(f"{path}: events of background class(es) "
                           f"{', '.join(names[c] for c in clash)}; background is never an event")
    return StreamingData(t, events, names, background, x, scores,
                         _features(data, scores, path))


def is_streaming_file(path: str | Path) -> bool:
    """True for a `.npz` that holds `t_ms` (streaming), False otherwise."""
    path = Path(path)
    if path.is_dir():
        return False
    return "t_ms" in open_npz(path)


# ---- Splits -----------------------------------------------------------------------------


def stratified_split(y: NDArray[np.int64], fraction: float, seed: int = 0
                     ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Indices (kept, split_off): about `fraction` of each class goes to split_off, at
    least one sample of every class with two or more on each side. Deterministic for a
    seed; both index arrays are sorted."""
    if not 0.0 < fraction < 1.0:
        raise TinyfixError(f"split fraction must be in (0, 1), got {fraction}")
    y = np.asarray(y, dtype=np.int64)
    rng = np.random.default_rng(seed)
    out: list[NDArray[np.int64]] = []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        take = round(members.size * fraction)
        if members.size >= 2:
            take = min(max(take, 1), members.size - 1)
        out.append(members[:take])
    split_off = np.sort(np.concatenate(out)) if out else np.zeros(0, dtype=np.int64)
    kept = np.setdiff1d(np.arange(y.size), split_off)
    return kept, split_off


def stream_cut_ms(data: StreamingData, fraction: float) -> int:
    """A time near `fraction` of the stream's span that no event straddles (an event and
    its 1000 ms detection tolerance lie wholly on one side)."""
    if not 0.0 < fraction < 1.0:
        raise TinyfixError(f"split fraction must be in (0, 1), got {fraction}")
    t0, t1 = int(data.t_ms[0]), int(data.t_ms[-1])
    want = t0 + fraction * (t1 - t0)
    times = np.unique(data.t_ms)
    busy = np.zeros(times.size, dtype=bool)
    for start, end in zip(data.events.start_ms, data.events.end_ms + HIT_TOLERANCE_MS,
                          strict=True):
        busy |= (times >= start) & (times <= end)
    free = times[~busy & (times > t0)]
    if not free.size:
        raise TinyfixError("cannot split the stream: every frame lies inside an event")
    return int(free[np.argmin(np.abs(free - want))])


def split_stream(data: StreamingData, fraction: float) -> tuple[StreamingData, StreamingData]:
    """(earlier, later) parts: the later holds about `fraction` of the stream's time."""
    cut = stream_cut_ms(data, 1.0 - fraction)
    return data.between(int(data.t_ms[0]), cut), data.between(cut, int(data.t_ms[-1]) + 1)


def split_classification(data: ClassificationData, fraction: float, seed: int = 0
                         ) -> tuple[ClassificationData, ClassificationData]:
    """(kept, split_off) by stratified_split, e.g. calibration and evaluation sets when no
    separate evaluation file is given."""
    kept, split_off = stratified_split(data.y, fraction, seed)
    return data.subset(kept), data.subset(split_off)
