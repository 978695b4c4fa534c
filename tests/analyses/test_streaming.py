"""Streaming reads: explanation shards and a run's kept data are memory-mapped, read in chunks,
and their pages let go after each chunk; the results equal the in-memory ones."""
import numpy as np
import torch
from safetensors.torch import save_file
from torch.utils.data import Subset, TensorDataset

from netgaze._util.tensor_files import MappedTensors, drop_pages
from netgaze.analyses.dataset_explanations import explain_dataset, load_explanations, open_explanations
from netgaze.analyses.indexed import picture_batches
from netgaze.lab.datasets.base import TensorImageDataset
from netgaze.lab.datasets.tensor_file import tensor_dataset, tensor_file_bytes


def _rss_file_kb() -> int:
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("RssFile:"))


def test_mapped_tensors_equal_the_file_and_pages_are_let_go(tmp_path):
    tensors = {"u8": torch.randint(0, 255, (4000, 1, 32, 32), dtype=torch.uint8), "i64": torch.arange(7),
               "bool": torch.rand(5, 3) > 0.5, "bf16": torch.randn(3, 2).bfloat16(), "empty": torch.zeros(0, 4)}
    save_file(tensors, str(tmp_path / "t.safetensors"), metadata={"a": "b"})
    mapped = MappedTensors(tmp_path / "t.safetensors")
    assert mapped.metadata == {"a": "b"}
    for key, value in tensors.items():
        assert torch.equal(mapped.tensor(key), value), key
    big = mapped.tensor("u8")
    del mapped  # the tensors keep the mapping, and its pages can still be let go
    drop_pages(big)
    before = _rss_file_kb()
    assert int(big.sum()) == int(tensors["u8"].sum())  # touches every page (4 MB)
    touched = _rss_file_kb()
    drop_pages(big)
    assert touched - before > 2000 and touched - _rss_file_kb() > 2000
    drop_pages(torch.ones(3))  # not mapped: nothing happens


def test_explanations_are_read_lazily_and_equal_load(tmp_path):
    g = torch.Generator().manual_seed(0)
    data = TensorImageDataset(torch.rand(23, 3, 10, 10, generator=g), torch.arange(23) % 4, list("abcd"),
                              name="t", split="test")
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(4, 4))
    explain_dataset(model, data, "gradcam", "0", out=tmp_path / "fast", shard_size=5, batch_size=3, progress=False)
    plain = TensorDataset(*data.tensors())  # no read_rows: the DataLoader path
    explain_dataset(model, plain, "gradcam", "0", out=tmp_path / "plain", shard_size=5, batch_size=3, progress=False)
    fast, slow = load_explanations(tmp_path / "fast"), load_explanations(tmp_path / "plain")
    assert all(torch.equal(fast[k], slow[k]) for k in slow)
    found = open_explanations(tmp_path / "fast")
    assert len(found) == 23
    assert torch.equal(found.read("maps", 3, 12), fast["maps"][3:12])
    assert torch.equal(torch.cat([s["indices"] for s in found.shards(["indices"])]), torch.arange(23))


def test_a_kept_split_is_memory_mapped_and_batches_equal_item_by_item(tmp_path):
    images = torch.randint(0, 255, (50, 1, 8, 8), dtype=torch.uint8)
    labels, masks = torch.arange(50) % 3, torch.rand(50, 8, 8) > 0.5
    (tmp_path / "data.safetensors").write_bytes(tensor_file_bytes({"test": (images, labels, masks)}, list("abc")))
    data = tensor_dataset(tmp_path / "data.safetensors", "test")
    assert torch.equal(data.masks, masks) and torch.equal(data.labels, labels)
    for source in (data, Subset(data, list(range(5, 45)))):
        for rank, world in ((0, 1), (1, 2)):
            fast = list(picture_batches(source, 7, rank=rank, world=world))
            slow = list(picture_batches(TensorDataset(*[t[source.indices] if isinstance(source, Subset) else t
                                                          for t in data.tensors()]), 7, rank=rank, world=world))
            assert len(fast) == len(slow)
            for (x, i), (y, j) in zip(fast, slow):
                assert torch.equal(x, y) and torch.equal(i, j)
    assert np.array_equal(data.read_rows(range(3, 9))[0].numpy(), (images[3:9].float() / 255).numpy())
