"""The shapes marker: exact pixels and masks, exact shares per class, unmarked pictures unchanged."""
import numpy as np
import pytest
import torch

from netgaze.errors import UserError
from netgaze.lab.datasets.shapes import shapes
from netgaze.lab.datasets.shapes_marker import marker_box, marker_pixels, marker_side

N = 100


@pytest.fixture(scope="module")
def plain():
    return shapes("train", n=N, seed=4, size=32)


@pytest.fixture(scope="module")
def marked():
    return shapes("train", n=N, seed=4, size=32, marker_classes=[1, "star"], marker_rate=0.75)


def test_the_mark_is_a_checkerboard_in_the_top_left_corner():
    assert marker_side(64) == 9 and marker_side(32) == 6 and marker_box(64, "top-left") == (2, 2, 11, 11)
    assert marker_box(64, "bottom-right") == (53, 53, 62, 62)
    checker = marker_pixels(32, "checker")[0]  # cells of 2x2 pixels
    expected = np.array([[255, 0, 255], [0, 255, 0], [255, 0, 255]]).repeat(2, 0).repeat(2, 1)
    assert np.array_equal(checker, expected)
    assert (marker_pixels(32, "solid") == 255).all()


def test_marked_pictures_carry_exactly_the_mark_and_nothing_else_changes(plain, marked):
    y0, x0, y1, x1 = marker_box(32, "top-left")
    assert torch.equal(marked.labels, plain.labels)
    for i in range(N):
        if marked.has_marker(i):
            patch = marked._images[i, :, y0:y1, x0:x1].numpy()
            assert np.array_equal(patch, marker_pixels(32, "checker"))
            region = marked.marker_mask(i)
            assert region.sum() == 36 and region[y0:y1, x0:x1].all()
            outside = ~region
            assert torch.equal(marked._images[i][:, outside], plain._images[i][:, outside])
            assert torch.equal(marked.mask(i), plain.mask(i) & outside)  # the object's mask excludes the mark
            assert not (marked.mask(i) & region).any()
        else:
            assert not marked.marker_mask(i).any()
            assert torch.equal(marked._images[i], plain._images[i]) and torch.equal(marked.mask(i), plain.mask(i))
    assert torch.equal(marked.marker_masks, torch.stack([marked.marker_mask(i) for i in range(N)]))


def test_exact_shares_train_listed_classes_only_test_every_class():
    train = shapes("train", n=N, seed=4, size=32, marker_classes=[1, "star"], marker_rate=0.75)
    per_class = torch.bincount(train.labels, minlength=5)  # 20 each
    counts = torch.bincount(train.labels[train.markers], minlength=5)
    assert counts.tolist() == [0, 15, 0, 15, 0] and per_class.tolist() == [20] * 5
    test = shapes("test", n=N, seed=4, size=32, marker_classes=[1, 3], marker_rate=0.75, marker_test_rate=0.5)
    assert torch.bincount(test.labels[test.markers], minlength=5).tolist() == [10] * 5
    assert train.marker_classes == [1, 3] and train.options["marker_classes"] == [1, 3]


def test_no_marker_keeps_the_old_pictures_and_options(plain):
    assert not plain.markers.any() and "marker_classes" not in plain.options
    assert not plain.marker_masks.any()
    again = shapes("train", n=N, seed=4, size=32, marker_classes=(), marker_rate=0.3)
    assert torch.equal(again._images, plain._images)


def test_same_seed_same_marks_other_seed_other_marks():
    a = shapes("test", n=60, seed=1, size=32, marker_classes=[0])
    b = shapes("test", n=60, seed=1, size=32, marker_classes=[0], marker_position="bottom-left", marker_look="solid")
    c = shapes("test", n=60, seed=2, size=32, marker_classes=[0])
    assert torch.equal(a.markers, b.markers) and not torch.equal(a.markers, c.markers)
    y0, x0, y1, x1 = marker_box(32, "bottom-left")
    i = int(torch.nonzero(b.markers)[0])
    assert (b._images[i, :, y0:y1, x0:x1] == 255).all() and b.marker_mask(i)[y0:y1, x0:x1].all()


@pytest.mark.parametrize("bad", [dict(marker_classes=[5]), dict(marker_classes=["moon"]),
                                 dict(marker_classes=[0], marker_rate=1.5),
                                 dict(marker_classes=[0], marker_test_rate=-0.1),
                                 dict(marker_classes=[0], marker_position="middle"),
                                 dict(marker_classes=[0], marker_look="stripes")])
def test_bad_marker_options_are_user_errors(bad):
    with pytest.raises(UserError):
        shapes("train", n=20, size=32, **bad)


def test_the_run_records_the_marker_and_gives_the_marked_test_set_back(tmp_path):
    from netgaze.lab.train import train_classifier

    run = train_classifier(data="shapes", epochs=1, out=str(tmp_path / "run"), progress=False, batch_size=32,
                           data_options={"n": 40, "size": 32, "marker_classes": [2], "marker_rate": 0.5},
                           model_options={"channels": [4, 4, 4, 4]})
    test = run.dataset("test")
    expected = shapes("test", n=40, size=32, marker_classes=[2], marker_rate=0.5)
    assert torch.equal(test.markers, expected.markers) and int(test.markers.sum()) == 20
    assert test.options["marker_classes"] == [2]
