"""Reference pictures per concept and the class atlas (issue 27 parts 2-3): numbers by hand and by brute force."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.data import TensorDataset

from netgaze.analyses.concept_references import ConceptReferencesError, concept_references, marker_numbers
from netgaze.methods.concepts import channel_relevance


def toy_model():
    """16x16 pictures -> 2x2 average -> channels 0 = red, 1 = green (1x1 conv) -> ReLU -> mean -> linear."""
    conv = nn.Conv2d(3, 2, 1, bias=False)
    head = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0] = conv.weight[1, 1] = 1.0
        head.weight.copy_(torch.tensor([[1.0, 0.5], [0.5, 1.0]]))
    return nn.Sequential(nn.AvgPool2d(2), conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head).eval()


def toy_data():
    x = torch.zeros(4, 3, 16, 16)
    x[0, 0, 4:6, 10:12] = 10.0        # red spike at feature cell (2, 5): peak 10, mean 10/64
    x[1, 0] = 2.0                     # red everywhere: peak 2, mean 2
    x[2, 1] = 1.0                     # green everywhere
    x[3, 0] = 1.0
    x[3, 1, 14:16, 0:2] = 3.0         # red everywhere, a green spike at feature cell (7, 0)
    return TensorDataset(x, torch.tensor([0, 0, 1, 1]))


def test_activation_and_relevance_pick_different_pictures_by_hand(snapshot):
    model, data = toy_model(), toy_data()
    snap = snapshot(model)
    found = concept_references(model, data, "2", k=4, per_picture=1, crop=6, batch_size=3, progress=False)
    snap.assert_unchanged()
    assert found.layer == "2" and found.classes == [0, 1]
    # red channel: peak activation 10 (picture 0), 2, 1, 0; relevance to class 0 = mean activation x 1
    assert found.by_activation.indices[0].tolist() == [0, 1, 3, 2]
    np.testing.assert_allclose(found.by_activation.values[0], [10, 2, 1, 0])
    assert found.by_relevance[0].indices[0].tolist() == [1, 3, 0, 2]
    np.testing.assert_allclose(found.by_relevance[0].values[0], [2, 1, 10 / 64, 0], rtol=1e-6)
    # class 1 weighs red by 0.5: picture 1 (red 2) 1.0, picture 3 0.5, picture 0 5/64
    np.testing.assert_allclose(found.by_relevance[1].values[0], [1, 0.5, 5 / 64, 0], rtol=1e-6)
    # crops: 6 px centred on the peak cell's centre in input pixels, shifted inside the picture
    assert found.by_activation.peaks[0, 0].tolist() == [2, 5]
    assert found.by_activation.boxes[0, 0].tolist() == [2, 8, 8, 14]         # centre (5, 11)
    assert found.by_activation.peaks[1, 0].tolist() == [7, 0]                 # green spike of picture 3
    assert found.by_activation.boxes[1, 0].tolist() == [10, 0, 16, 6]        # centre (15, 1): clipped
    atlas = found.atlas
    assert atlas.pictures.tolist() == [2, 2]
    # class 0: pictures 0, 1 give red (10/64 + 2) and green 0; class 1: pictures 2, 3 give red 0.5 and
    # green 1 + 3/64 of a total 1 + 0.5 + 3/64
    total = 1 + 0.5 + 3 / 64
    np.testing.assert_allclose(atlas.mean_share, [[1, 0], [0.5 / total, (1 + 3 / 64) / total]], rtol=1e-6)
    np.testing.assert_allclose(atlas.top_rate, [[1, 0], [0.5, 0.5]])   # picture 3's top channel is red
    assert atlas.ranking(1) == [1, 0]
    relying = atlas.relying[1]
    assert relying.indices[0].tolist() == [3, 2, -1, -1]             # red's share: 0.5/0.547 on 3, 0 on 2
    np.testing.assert_allclose(relying.values[0][:2], [0.5 / (0.5 + 3 / 64), 0], rtol=1e-6)
    dumped = atlas.to_dict(1)["classes"]["1"]["channels"][0]
    assert dumped["channel"] == 1 and dumped["relying"] == [2, 3]


def small_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(5, 6, 3, padding=1),
                         nn.ReLU(), nn.Conv2d(6, 6, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(6, 3)).eval()


def random_data(n=23):
    g = torch.Generator().manual_seed(3)
    return TensorDataset(torch.rand(n, 3, 12, 12, generator=g), torch.arange(n) % 3)


def test_streaming_equals_all_at_once_and_channel_relevance():
    model, data = small_model(), random_data()
    streamed = concept_references(model, data, "4", k=5, per_picture=2, batch_size=4, progress=False)
    whole = concept_references(model, data, "4", k=5, per_picture=2, batch_size=len(data), progress=False)
    for a, b in [(streamed.by_activation, whole.by_activation), *[(streamed.by_relevance[c], whole.by_relevance[c])
                                                                  for c in range(3)],
                 *[(streamed.atlas.relying[c], whole.atlas.relying[c]) for c in range(3)]]:
        assert np.array_equal(a.indices, b.indices) and np.array_equal(a.boxes, b.boxes)
        np.testing.assert_allclose(a.values, b.values, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(streamed.atlas.mean_share, whole.atlas.mean_share, rtol=1e-5)
    assert np.array_equal(streamed.atlas.top_rate, whole.atlas.top_rate)
    # by brute force: ng's channel_relevance per class (through the 1x1 conv after the layer)
    x, labels = data.tensors
    relevance = torch.stack([channel_relevance(model, x, "4", target=c) for c in range(3)], 1)   # [N, 3, C]
    for c in range(3):
        for ch in range(6):
            column = relevance[:, c, ch]
            order = sorted(range(len(x)), key=lambda i: (-float(column[i]), i))[:5]
            assert streamed.by_relevance[c].indices[ch].tolist() == order
            np.testing.assert_allclose(streamed.by_relevance[c].values[ch], column[order].numpy(), rtol=1e-5)
        mine = relevance[labels == c, c]                          # the class's pictures for their own class
        np.testing.assert_allclose(streamed.atlas.mean_share[c], (mine.sum(0) / mine.sum()).numpy(), rtol=1e-4)
        top = torch.zeros(6)
        for row in mine:
            top[row.topk(2).indices] += 1
        np.testing.assert_allclose(streamed.atlas.top_rate[c], (top / len(mine)).numpy())


def test_marker_numbers_count_references_and_crops_on_the_marker():
    model, data = toy_model(), toy_data()
    data.markers = torch.tensor([True, False, False, True])
    data.marker_classes = [0]
    masks = torch.zeros(4, 16, 16, dtype=torch.bool)
    masks[0, 4:6, 10:12] = True                    # under picture 0's red spike: inside its crop
    masks[3, 0:2, 14:16] = True                    # a corner far from picture 3's red peak (0, 0)
    data.marker_masks = masks
    found = concept_references(model, data, "2", k=3, per_picture=1, crop=6, progress=False)
    numbers = marker_numbers(found, data, n=2)
    # class 0, red: references by relevance 1, 3, 0 -> 3 and 0 carry the marker, only 0's crop covers it
    assert numbers["classes"]["0"]["channels"]["0"] == {"carry": 2, "covered": 1, "of": 3}
    assert numbers["base_rate"] == 0.5 and numbers["marker_classes"] == [0]
    assert marker_numbers(found, toy_data()) is None


@pytest.mark.parametrize("options, message", [
    ({"k": 0}, "k must be from 1"), ({"k": 5}, "k must be from 1"), ({"per_picture": 3}, "per_picture=3"),
    ({"classes": [2]}, "classes [2]"), ({"classes": [0, 0]}, "distinct")])
def test_bad_requests_are_user_errors(options, message):
    with pytest.raises(ConceptReferencesError, match=message.replace("[", r"\[").replace("]", r"\]")):
        concept_references(toy_model(), toy_data(), "2", progress=False, **{"k": 2, **options})


def test_pictures_without_labels_are_refused():
    with pytest.raises(ConceptReferencesError, match="no class labels"):
        concept_references(toy_model(), TensorDataset(toy_data().tensors[0]), "2", k=2, progress=False)
