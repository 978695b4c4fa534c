"""The report's sections for the dataset-wide analyses (strategies, dissection, top pictures per unit,
concepts).

Kept apart from ``sections.py`` so the analyses' texts live with one owner; ``sections.py``
merges ``DATASET_STUDIES`` into its ``STUDIES`` and lists ``DATASET_STUDY_ORDER`` in the
classification chapter.
"""
from __future__ import annotations

DATASET_STUDIES: dict[str, dict[str, str]] = {
    "strategies": {"title": "Strategies: clusters of explanations (SpRAy)", "intro": (
        "Spectral relevance analysis (Lapuschkin et al. 2019) explains every test picture of a class and clusters "
        "the maps, without labels: each cluster is one way the model decides that class. The number of clusters "
        "comes from the eigengap of the affinity graph. A cluster whose maps lie outside the object, where the "
        "rest of the class's maps lie on it, is a likely shortcut (a watermark, a border, a background patch)."),
        "intro_without_masks": (
        "Spectral relevance analysis (Lapuschkin et al. 2019) explains every test picture of a class and clusters "
        "the maps, without labels: each cluster is one way the model decides that class. The number of clusters "
        "comes from the eigengap of the affinity graph. The data has no masks, so the clusters are not checked "
        "for shortcuts; look at their typical pictures.")},
    "dissection": {"title": "Network dissection: which units detect which concepts", "intro": (
        "Network Dissection (Bau et al. 2017): each unit's activation, upsampled and kept where it is in its top "
        "0.5% over the dataset, is compared with concept masks (each class's object, any object, the background, "
        "the marker) by IoU; a unit whose best IoU passes 0.04 detects that concept. Counting detectors per layer "
        "shows how what the units respond to changes with depth.")},
    "top_examples": {"title": "Top pictures per unit", "intro": (
        "For each channel, the dataset pictures that activate it most and the crop around the peak activation, "
        "beside the picture synthesised to maximise the channel (activation maximization), as in OpenAI "
        "Microscope: what the unit responds to in real data next to what it would like to see.")},
    "concepts": {"title": "Concepts: what each class relies on", "intro": (
        "Concept relevance (CRP, Achtibat et al. 2023, with a plain gradient): a channel's relevance to a class is "
        "its activation times the class logit's gradient, summed over space; its share is that relevance divided "
        "by the sum over all the layer's channels. The atlas lists, per class, the channels with the largest share "
        "over the class's own pictures and how often each is among a picture's most relevant channels. Each "
        "channel's reference pictures are cropped around its peak: those that activate it most, and those where it "
        "carries most of the class's logit (relevance maximization); the two differ when a unit that fires on "
        "many things matters for the class only on some.")},
}
DATASET_STUDY_ORDER = ["strategies", "dissection", "top_examples", "concepts"]
