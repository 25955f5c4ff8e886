# SPDX-License-Identifier: Apache-2.0
"""Loading the issue-5 data formats, refusing malformed files clearly, deterministic
splits."""

import numpy as np
import pytest

from tinyfix import datasets
from tinyfix.errors import TinyfixError


def save(path, **arrays):
    np.savez(path, **arrays)
    return path


def stream_arrays(**overrides):
    arrays = {
        "t_ms": np.arange(0, 20_000, 100),
        "scores": np.zeros((200, 3), dtype=np.int8),
        "event_start_ms": np.array([2000, 9000]),
        "event_end_ms": np.array([2500, 9400]),
        "event_label": np.array([1, 2]),
        "class_names": np.array(["silence", "yes", "no"]),
        "background": np.array(["silence"]),
    }
    arrays.update(overrides)
    return {k: v for k, v in arrays.items() if v is not None}


def test_classification_npz_with_inputs_loads(tmp_path):
    x = np.random.default_rng(0).normal(size=(6, 4, 3)).astype(np.float32)
    path = save(tmp_path / "d.npz", x=x, y=[0, 1, 2, 0, 1, 2],
                class_names=np.array(["a", "b", "c"]))
    data = datasets.load_classification(path)
    assert data.x.shape == (6, 4, 3) and data.scores is None
    assert data.class_names == ("a", "b", "c")
    assert data.y.tolist() == [0, 1, 2, 0, 1, 2]


def test_classification_npz_with_recorded_scores_loads(tmp_path):
    path = save(tmp_path / "d.npz", scores=np.zeros((3, 4), np.int8), y=[0, 3, 1])
    data = datasets.load_classification(path)
    assert data.class_names == ("0", "1", "2", "3") and data.scores.shape == (3, 4)


@pytest.mark.parametrize(("arrays", "message"), [
    ({"x": np.zeros((3, 2))}, "missing key.*y"),
    ({"y": [0, 1]}, "needs `x`"),
    ({"x": np.zeros((3, 2)), "y": [0, 1]}, "3 rows but there are 2"),
    ({"x": np.array([[0.0, np.nan]]), "y": [0]}, "NaN"),
    ({"x": np.zeros((2, 2)), "y": [0, 0.5]}, "whole numbers"),
    ({"scores": np.zeros((2, 2)), "y": [0, 2]}, r"class indices in \[0, 1\]"),
    ({"x": np.zeros((2, 2)), "y": [0, 1], "class_names": np.array(["a", "a"])}, "duplicates"),
])
def test_malformed_classification_files_are_refused_clearly(tmp_path, arrays, message):
    path = save(tmp_path / "bad.npz", **arrays)
    with pytest.raises(TinyfixError, match=message):
        datasets.load_classification(path)


def test_a_file_that_is_not_npz_is_refused(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_text("hello")
    with pytest.raises(TinyfixError, match=r"not a readable \.npz"):
        datasets.load_classification(path)
    with pytest.raises(TinyfixError, match="no such file"):
        datasets.load_classification(tmp_path / "absent.npz")


def test_folder_with_one_csv_per_class_loads_rows_as_samples(tmp_path):
    np.savetxt(tmp_path / "wave.csv", np.ones((3, 6)), delimiter=",")
    np.savetxt(tmp_path / "idle.csv", np.zeros((2, 6)), delimiter=",")
    data = datasets.load_classification(tmp_path)
    assert data.class_names == ("idle", "wave")
    assert data.y.tolist() == [0, 0, 1, 1, 1]
    assert data.x.shape == (5, 6)


def test_folder_with_one_subfolder_per_class_loads_files_as_samples(tmp_path):
    for name, n in (("tap", 2), ("idle", 3)):
        (tmp_path / name).mkdir()
        for i in range(n):
            np.save(tmp_path / name / f"{i}.npy", np.full((8, 3), i, np.float32))
    data = datasets.load_classification(tmp_path)
    assert data.class_names == ("idle", "tap")
    assert data.x.shape == (5, 8, 3)
    assert np.bincount(data.y).tolist() == [3, 2]


def test_folder_samples_of_different_shapes_are_refused(tmp_path):
    (tmp_path / "a").mkdir()
    np.save(tmp_path / "a" / "0.npy", np.zeros((4, 3)))
    np.save(tmp_path / "a" / "1.npy", np.zeros((5, 3)))
    with pytest.raises(TinyfixError, match="differ in shape"):
        datasets.load_classification(tmp_path)


def test_streaming_npz_loads_with_background_by_name(tmp_path):
    data = datasets.load_streaming(save(tmp_path / "s.npz", **stream_arrays()))
    assert data.background == (0,)
    assert len(data.events) == 2 and data.scores.shape == (200, 3)
    assert datasets.is_streaming_file(tmp_path / "s.npz")


@pytest.mark.parametrize(("overrides", "message"), [
    ({"event_label": None}, "missing key.*event_label"),
    ({"t_ms": np.arange(200)[::-1]}, "time order"),
    ({"scores": np.zeros((199, 3))}, "199 rows"),
    ({"scores": np.zeros((200, 4))}, "3 class_names"),
    ({"background": np.array(["noise"])}, "not in class_names"),
    ({"event_label": np.array([0, 2])}, "background is never an event"),
    ({"event_end_ms": np.array([1000, 9400])}, "ends before it starts"),
    ({"event_end_ms": np.array([2500])}, "differ in length"),
    ({"scores": np.full((200, 3), np.inf)}, "NaN or infinite"),
])
def test_malformed_streaming_files_are_refused_clearly(tmp_path, overrides, message):
    path = save(tmp_path / "bad.npz", **stream_arrays(**overrides))
    with pytest.raises(TinyfixError, match=message):
        datasets.load_streaming(path)


def test_stratified_split_is_deterministic_and_keeps_every_class_on_both_sides():
    y = np.repeat(np.arange(4), [50, 20, 5, 2])
    kept, held = datasets.stratified_split(y, 0.3, seed=7)
    again = datasets.stratified_split(y, 0.3, seed=7)
    assert np.array_equal(kept, again[0]) and np.array_equal(held, again[1])
    assert np.intersect1d(kept, held).size == 0 and kept.size + held.size == y.size
    assert set(y[kept]) == set(y[held]) == {0, 1, 2, 3}
    assert np.bincount(y[held]).tolist() == [15, 6, 2, 1]
    other = datasets.stratified_split(y, 0.3, seed=8)[1]
    assert not np.array_equal(held, other)


def test_stream_split_never_cuts_an_event_or_its_tolerance(tmp_path):
    data = datasets.load_streaming(save(tmp_path / "s.npz", **stream_arrays(
        event_start_ms=np.array([2000, 12_500]), event_end_ms=np.array([2500, 14_500]),
        event_label=np.array([1, 2]))))
    early, late = datasets.split_stream(data, 0.3)  # 30 % of 20 s wants a cut near 14 s
    cut = int(late.t_ms[0])
    assert not 12_500 <= cut <= 15_500
    assert len(early) + len(late) == len(data)
    assert len(early.events) + len(late.events) == 2
    assert early.t_ms.max() < cut


def test_classification_split_keeps_inputs_with_their_labels():
    y = np.repeat(np.arange(3), 10)
    data = datasets.ClassificationData(y, ("a", "b", "c"), x=np.arange(30.0)[:, None])
    cal, ev = datasets.split_classification(data, 0.2, seed=1)
    assert len(cal) == 24 and len(ev) == 6
    assert np.array_equal(ev.x[:, 0] // 10, ev.y)
    assert np.array_equal(cal.x[:, 0] // 10, cal.y)


def test_unnamed_labels_may_use_some_of_a_models_classes(tmp_path):
    data = datasets.load_classification(save(tmp_path / "d.npz", x=np.zeros((3, 2)), y=[0, 2, 2]))
    assert data.class_names == ("0", "1", "2") and not data.names_given
    assert data.names_for_model(5) == ("0", "1", "2", "3", "4")
    with pytest.raises(TinyfixError, match="labels go up to 2 but the model has 2 classes"):
        data.names_for_model(2)


def test_named_data_must_name_every_class_of_the_model(tmp_path):
    data = datasets.load_classification(save(tmp_path / "d.npz", x=np.zeros((2, 2)), y=[0, 1],
                                             class_names=np.array(["no", "yes"])))
    assert data.names_given and data.names_for_model(2) == ("no", "yes")
    with pytest.raises(TinyfixError, match=r"names 2 classes \(no, yes\) but the model has 3"):
        data.names_for_model(3)
    assert data.subset(np.array([1])).names_given
