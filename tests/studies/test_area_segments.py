"""Area explanations of segments: locality of the area target, the study's figure and numbers."""
import numpy as np
import pytest
import torch
from PIL import Image

import netgaze as ng
from netgaze.lab.models import build_model
from netgaze.lab.segment import train_segmentation
from netgaze.studies.area import area_mass_share, grow_box
from netgaze.studies.area_segments import area_segments_study, encoder_pools, explain_segment, main_segment


def _simple_fcn(decoder="fcn8"):
    torch.manual_seed(0)
    model = build_model(decoder, encoder="simple", num_classes=3)
    with torch.no_grad():   # score layers start at zero: make them speak
        for name, module in model.named_children():
            if name.startswith("score_"):
                module.weight.normal_(0, 0.5)
    return model.eval()


@pytest.mark.parametrize("decoder", ["fcn32", "fcn8"])
def test_area_explanations_stay_within_the_receptive_field(decoder, snapshot):
    """The simple FCN sees at most ~60 px around an output pixel, so an area target on an 8x8 corner box
    of a 160x160 picture has EXACTLY zero guided backprop beyond that radius. Grad-CAM is not local by
    construction: its channel weights are gradients averaged over the whole map, so it spreads further."""
    model = _simple_fcn(decoder)
    snap = snapshot(model)
    x = torch.rand(1, 3, 160, 160)
    box = (0, 0, 8, 8)
    guided = ng.guided_backprop(model, x, target=ng.Area(box=box, channel=1))
    cams = ng.gradcam(model, x, layer=["encoder.pool1", "encoder.pool3"], target=ng.Area(box=box, channel=1))
    snap.assert_unchanged()
    far = grow_box(box, 72, (160, 160))
    assert guided.abs().sum() > 0
    outside = torch.ones(160, 160, dtype=torch.bool)
    outside[far[0]:far[2], far[1]:far[3]] = False
    assert guided[..., outside].abs().max() == 0
    assert area_mass_share(guided, box).item() < 1.0
    for cam in cams.values():
        assert cam.min() >= 0 and area_mass_share(cam, far).item() < 1.0


def test_mask_target_equals_the_sum_over_its_box_when_the_mask_fills_the_box():
    model = _simple_fcn()
    x = torch.rand(2, 3, 40, 40)
    region = torch.zeros(40, 40, dtype=torch.bool)
    region[5:20, 10:30] = True
    by_mask = ng.saliency(model, x, target=ng.Area(mask=region, channel=2))
    by_box = ng.saliency(model, x, target=ng.Area(box=(5, 10, 20, 30), channel=2))
    assert torch.allclose(by_mask, by_box, atol=1e-6) and by_box.abs().sum() > 0


def test_main_segment_by_hand():
    mask = torch.zeros(6, 7, dtype=torch.long)
    mask[1:3, 2:5] = 2          # 6 pixels of class 2
    mask[4, 0:2] = 1            # 2 pixels of class 1
    mask[5, 6] = 255
    c, region, box = main_segment(mask)
    assert (c, box, int(region.sum())) == (2, (1, 2, 3, 5), 6)
    assert main_segment(torch.zeros(3, 3, dtype=torch.long)) is None


def test_study_figure_and_numbers(tmp_path):
    run = train_segmentation("shapes", "simple", "fcn16", epochs=1, batch_size=16, out=str(tmp_path / "run"),
                             data_options={"n": 32, "size": 32}, progress=False, examples=0)
    result = area_segments_study(run, n_show=2, n_measure=3)
    numbers = result.manifest["numbers"]
    assert numbers["layers"] == ["encoder.pool1", "encoder.pool2", "encoder.pool3"] == encoder_pools(run.model)
    assert numbers["n"] == 3 and 0 < numbers["box_area_share"] < 1
    # recompute the first example by hand
    from netgaze.lab.segment import segmentation_dataset
    test = segmentation_dataset(run, "test")
    first = numbers["examples"][0]
    image, mask = test[first["index"]]
    c, region, box = main_segment(mask)
    assert list(box) == first["box"] and test.classes[c] == first["class"]
    maps = explain_segment(run.model, image[None], c, region, box, numbers["layers"])
    assert torch.allclose(maps["guided"], result.maps["guided"][0])
    picture = np.asarray(Image.open(result.figures[0]))
    assert picture.shape[0] > 2 * 96 and picture.shape[1] > 6 * 96 and picture.std() > 20
    assert (tmp_path / "run" / "artifacts" / "area_segments.json").is_file()
