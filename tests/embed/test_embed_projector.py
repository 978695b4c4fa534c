"""TensorBoard projector export: format rules, and TensorBoard's own plugin loading the folder."""
import io
import json
import math

import numpy as np
import pytest
from PIL import Image

from netgaze.embed import export_projector
from netgaze.embed.projector import SPRITE_LIMIT, max_sprite_points, metadata_tsv, sprite_layout

pytest.importorskip("tensorboard")
from google.protobuf import text_format  # noqa: E402
from tensorboard.plugins.projector import projector_plugin  # noqa: E402
from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig  # noqa: E402


def sample(n=30, d=7, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 1, (n, d)).astype(np.float32)
    X[0, 0] = 1e-30            # values that a short float format would not round-trip
    X[1, 1] = 123456.789
    thumbs = rng.integers(0, 256, (n, 12, 12, 3), dtype=np.uint8)
    labels = [["cat", "dog\tdingo", "eel\nfish"][i % 3] for i in range(n)]
    return X, thumbs, labels


def read_config(folder) -> ProjectorConfig:
    config = ProjectorConfig()
    text_format.Parse((folder / "projector_config.pbtxt").read_text(), config)
    return config


def test_config_fields_tensor_round_trip_and_header_rule(tmp_path):
    X, thumbs, labels = sample()
    Y = X[:, :3] * 2
    export_projector(tmp_path, {"features": X, "tsne-3d": Y}, labels=labels, thumbnails=thumbs)
    config = read_config(tmp_path)
    assert [e.tensor_name for e in config.embeddings] == ["features", "tsne-3d"]
    e = config.embeddings[0]
    assert e.tensor_path == "features.tsv" and list(e.tensor_shape) == [30, 7]
    assert e.metadata_path == "metadata.tsv" and e.sprite.image_path == "sprite.png"
    # one column: no header, one line per point, tabs/newlines inside values flattened
    lines = (tmp_path / "metadata.tsv").read_text().splitlines()
    assert len(lines) == 30 and lines[:3] == ["cat", "dog dingo", "eel fish"]
    # the plugin's own reader returns exactly our float32 values
    np.testing.assert_array_equal(projector_plugin._read_tensor_tsv_file(str(tmp_path / "features.tsv")), X)
    np.testing.assert_array_equal(projector_plugin._read_tensor_tsv_file(str(tmp_path / "tsne-3d.tsv")), Y)
    # sprite: square grid of ceil(sqrt(N)) columns, thumbnails at their own size (12 px)
    sprite = np.asarray(Image.open(tmp_path / "sprite.png"))
    assert list(e.sprite.single_image_dim) == [12, 12]
    assert sprite.shape == (6 * 12, 6 * 12, 3)           # ceil(sqrt(30)) = 6
    np.testing.assert_array_equal(sprite[12:24, 24:36], thumbs[8])   # row 1, column 2
    assert (sprite[60:, 0:] == 255).all()                # unused cells are white


def test_several_columns_get_a_header(tmp_path):
    X, _, labels = sample(n=4)
    export_projector(tmp_path, X, labels=labels[:4], predictions=["cat"] * 4, split="test",
                     paths=["a/1.png", "a/2.png", "", "a/4.png"], tensor_format="bytes")
    lines = (tmp_path / "metadata.tsv").read_text().splitlines()
    assert lines[0] == "label\tprediction\tsplit\tpath" and len(lines) == 5
    assert lines[3] == "eel fish\tcat\ttest\t-"          # empty values become "-", never a short row
    config = read_config(tmp_path)
    assert config.embeddings[0].tensor_path == "features.bytes" and not config.embeddings[0].sprite.image_path
    got = projector_plugin._read_tensor_binary_file(str(tmp_path / "features.bytes"),
                                                    config.embeddings[0].tensor_shape)
    np.testing.assert_array_equal(got, X)
    assert metadata_tsv({"label": ["x"]}) == "x\n"


def test_sprite_sizes_stay_within_the_projector_limit():
    for n in (1, 2, 100, 10_000, 20_000, 100_000, max_sprite_points(8)):
        cols, side = sprite_layout(n)
        assert cols == math.ceil(math.sqrt(n)) and cols * side <= SPRITE_LIMIT and side >= 8
    assert sprite_layout(100) == (10, 64) and sprite_layout(20_000) == (142, 57)
    with pytest.raises(ValueError, match="do not fit"):
        sprite_layout(max_sprite_points(8) + 1)


def test_too_many_points_for_the_sprite_give_a_seeded_subsample(tmp_path):
    X, thumbs, labels = sample(n=10)
    with pytest.warns(UserWarning, match="random subsample of 4 points"):
        export_projector(tmp_path / "a", X, labels=labels, thumbnails=thumbs, min_thumbnail=4096)
    with pytest.warns(UserWarning):
        export_projector(tmp_path / "b", X, labels=labels, thumbnails=thumbs, min_thumbnail=4096, random_state=0)
    a = projector_plugin._read_tensor_tsv_file(str(tmp_path / "a" / "features.tsv"))
    b = projector_plugin._read_tensor_tsv_file(str(tmp_path / "b" / "features.tsv"))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (4, 7)
    rows = [int(np.flatnonzero((X == r).all(1))[0]) for r in a]          # which points were kept
    assert (tmp_path / "a" / "metadata.tsv").read_text().splitlines() == [
        labels[i].replace("\t", " ").replace("\n", " ") for i in rows]
    sprite = np.asarray(Image.open(tmp_path / "a" / "sprite.png"))
    np.testing.assert_array_equal(sprite[:12, 12:24], thumbs[rows[1]])


def test_tensorboard_projector_plugin_serves_the_folder(tmp_path):
    from tensorboard.plugins import base_plugin
    from werkzeug.test import Client

    X, thumbs, labels = sample(n=9)
    export_projector(tmp_path, {"features": X, "pca-2d": X[:, :2]}, labels=labels, predictions=labels,
                     thumbnails=thumbs)
    plugin = projector_plugin.ProjectorPlugin(base_plugin.TBContext(logdir=str(tmp_path)))
    apps = plugin.get_plugin_apps()

    def get(route, **query):
        response = Client(apps[route]).get("/", query_string=query)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response

    assert json.loads(get("/runs").get_data()) == ["."]
    info = json.loads(get("/info", run=".").get_data())
    assert [e["tensorName"] for e in info["embeddings"]] == ["features", "pca-2d"]
    assert [int(v) for v in info["embeddings"][0]["tensorShape"]] == [9, 7]
    assert info["embeddings"][0]["sprite"]["singleImageDim"] == [12, 12]
    tensor = np.frombuffer(get("/tensor", run=".", name="features").get_data(), dtype=np.float32)
    np.testing.assert_array_equal(tensor.reshape(9, 7), X)
    metadata = get("/metadata", run=".", name="pca-2d").get_data(as_text=True).splitlines()
    assert metadata[0] == "label\tprediction" and len(metadata) == 10
    png = get("/sprite_image", run=".", name="features")
    image = Image.open(io.BytesIO(png.get_data()))
    assert png.mimetype == "image/png" and image.size == (36, 36)
