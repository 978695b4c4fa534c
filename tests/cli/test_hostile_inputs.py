"""Hostile inputs to the command line: control sequences in user strings, misleading labels, nonsense weights."""
from __future__ import annotations

import numpy as np
import torch
import torchvision
from PIL import Image

from netgaze.cli import main
from netgaze.errors import one_line, printable

TITLE = "\x1b]0;pwned\x07"   # sets the terminal's title when printed raw


def test_printable_escapes_control_characters_and_keeps_text():
    assert printable(f"dog{TITLE} é 狗\tx") == "dog\\x1b]0;pwned\\x07 é 狗\tx"
    assert printable("\u202egnp.exe") == "\\u202egnp.exe"          # a right-to-left override
    assert one_line("a\n\x1b[2J b") == "a; \\x1b[2J b"


def test_labels_and_file_names_are_printed_escaped(tmp_path, capsys):
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(num_classes=2).state_dict(), tmp_path / "r18.pth")
    (tmp_path / "labels.txt").write_text(f"cat{TITLE}\ndog{TITLE}\n")
    picture = tmp_path / f"p{TITLE}.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(picture)
    status = main(["explain", "--model", "torchvision:resnet18", "--weights", str(tmp_path / "r18.pth"),
                   "--labels", str(tmp_path / "labels.txt"), "--size", "64", "--images", str(picture),
                   "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert status == 0 and "\x1b" not in out + err and "\x07" not in out + err
    assert "\\x1b]0;pwned\\x07" in out and "predicted" in out
    assert main(["report", str(tmp_path / f"missing{TITLE}")]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "missing\\x1b]0;pwned" in err and len(err.strip().splitlines()) == 1


def test_labels_files_that_would_mislead_are_refused(tmp_path):
    import re

    import pytest

    from netgaze.zoo import ModelInputError, read_labels

    cases = {"dup.txt": ("cat\ndog\ncat\n", "'cat' names two classes (lines 1 and 3)"),
             "blank.txt": ("cat\n\ndog\n", "line 2 is blank"),
             "latin1.txt": ("chat\nchien\nb\xe9b\xe9\n".encode("latin-1"), "cannot read")}
    for name, (text, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
        with pytest.raises(ModelInputError, match=re.escape(message)):
            read_labels(path, 3)

    (tmp_path / "ok.txt").write_text("cat\ndog\nbird\n\n")
    assert read_labels(tmp_path / "ok.txt", 3) == ["cat", "dog", "bird"]


def test_weights_that_would_explain_nonsense_are_refused(tmp_path):
    import re

    import pytest

    from netgaze.zoo import ModelInputError, load_named_model

    torch.manual_seed(0)
    good = torchvision.models.resnet18(num_classes=2).state_dict()
    torch.save(good, tmp_path / "good.pth")
    assert load_named_model("torchvision:resnet18", tmp_path / "good.pth", size=64).classes == ["0", "1"]
    def nan(t):
        t[0, :2] = float("nan")
        return t

    def inf(t):
        t.view(-1)[0] = float("inf")
        return t

    cases = {"nan.pth": ("fc.weight", nan, "fc.weight holds 2 NaN or infinite value(s) of 1024"),
             "inf.pth": ("conv1.weight", inf, "conv1.weight holds 1 NaN or infinite"),
             "int8.pth": ("fc.weight", lambda t: t.to(torch.int8), "fc.weight is int8"),
             "bool.pth": ("fc.bias", lambda t: t > 0, "fc.bias is bool")}
    for name, (key, change, message) in cases.items():
        state = {k: v.clone() for k, v in good.items()}
        state[key] = change(state[key])
        torch.save(state, tmp_path / name)
        with pytest.raises(ModelInputError, match=re.escape(message)):
            load_named_model("torchvision:resnet18", tmp_path / name, size=64)


def test_a_class_name_of_a_page_of_text_is_refused(tmp_path):
    import pytest

    from netgaze.zoo import ModelInputError, read_labels

    (tmp_path / "long.txt").write_text("cat\n" + "d" * 20_000 + "\n")
    with pytest.raises(ModelInputError, match="line 2 is a class name of 20,000 characters; the limit is 200"):
        read_labels(tmp_path / "long.txt", 2)


def test_a_non_local_host_without_token_warns_in_one_line():
    import io

    from netgaze.serve.server import check_host

    out = io.StringIO()
    token = check_host("0.0.0.0", None, out=out)
    assert len(token) >= 16 and len(out.getvalue().strip().splitlines()) == 1
    assert out.getvalue().startswith("netgaze serve: warning: listening on 0.0.0.0")
    assert check_host("127.0.0.1", None, out=out) is None and check_host("0.0.0.0", "given-token") == "given-token"
