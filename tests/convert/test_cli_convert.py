"""`keras-seg convert`, in process through keras_seg.cli.main."""

import keras
import numpy as np
from support.torch_parity import save_state, torch_original

from keras_seg import cli, convert


def _checkpoint(tmp_path, arch="torchvision/resnet18", **options):
    module = torch_original(arch, **options)
    return module, save_state(module, tmp_path / "checkpoint.pth")


def test_convert_writes_a_checked_keras_model(tmp_path, capsys):
    module, path = _checkpoint(tmp_path)
    output = tmp_path / "resnet18.keras"
    assert cli.main(["convert", "torchvision/resnet18", path, "--output", str(output),
                     "--check", "--check-size", "48x64"]) == 0
    out = capsys.readouterr().out
    # torchvision's resnet18 has 11,689,512 parameters, 513,000 of them in its classifier
    assert "11,176,512 parameters (11,186,112 with the BatchNorm statistics) loaded" in out
    for level in ("P1", "P5"):
        assert f"check {level} at 48x64: max |keras - torch| = " in out
    assert f"wrote {output}" in out
    loaded = keras.saving.load_model(output)
    gaps = convert.compare_with_torch(loaded, "torchvision/resnet18", module, (40, 40))
    assert max(diff / scale for diff, scale in gaps.values()) < 1e-4
    assert convert.input_normalization(loaded) is not None
    assert not list(tmp_path.glob(".*tmp*")), "the temporary file was left behind"


def test_convert_no_normalize_and_no_aux(tmp_path, capsys):
    module, path = _checkpoint(tmp_path, "torchvision/deeplabv3_resnet50", num_classes=2,
                               aux=True)
    output = tmp_path / "plain.keras"
    assert cli.main(["convert", "torchvision/deeplabv3_resnet50", path, "--output",
                     str(output), "--no-normalize", "--no-aux", "--check",
                     "--check-size", "33x41"]) == 0
    out = capsys.readouterr().out
    assert "check logits at 33x41" in out and "check aux" not in out
    loaded = keras.saving.load_model(output)
    assert convert.input_normalization(loaded) is None
    assert loaded.output.shape[-1] == 2 and not isinstance(loaded.output, dict)


def test_no_aux_on_an_architecture_without_one_checks_too(tmp_path, capsys):
    _, path = _checkpoint(tmp_path, "smp/Linknet-resnet18", num_classes=2)
    output = tmp_path / "linknet.keras"
    assert cli.main(["convert", "smp/Linknet-resnet18", path, "--output", str(output),
                     "--no-aux", "--check", "--check-size", "64x96"]) == 0
    out = capsys.readouterr().out
    assert "check logits at 64x96" in out and f"wrote {output}" in out


def test_convert_refuses_bad_input_on_one_line(tmp_path, capsys, monkeypatch):
    _, path = _checkpoint(tmp_path)
    cases = [
        (["convert", "torchvision/resnet17", path, "--output", str(tmp_path / "a.keras")],
         "unknown architecture 'torchvision/resnet17'"),
        (["convert", "torchvision/resnet34", path, "--output", str(tmp_path / "b.keras")],
         "the checkpoint does not fit the model"),
        (["convert", "torchvision/resnet18", path, "--output", str(tmp_path / "c.h5")],
         "--output must be a .keras file"),
        (["convert", "torchvision/resnet18", path, "--output",
          str(tmp_path / "nowhere" / "d.keras")], "does not exist"),
        (["convert", "torchvision/resnet18", str(tmp_path / "absent.pth"), "--output",
          str(tmp_path / "e.keras")], "absent.pth' does not exist"),
        (["convert", "smp/Unet-resnet18", path, "--output", str(tmp_path / "g.keras"),
          "--check", "--check-size", "50x64"],
         "--check-size 50x64: smp/Unet-resnet18 takes sides that are multiples of 32"),
    ]
    for argv, message in cases:
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("keras-seg convert: error: ") and message in err, err
        assert err.count("\n") == 1
    # a failed check writes nothing
    monkeypatch.setattr(convert, "compare_with_torch",
                        lambda *a, **k: {"P5": (1.0, 2.0)})
    output = tmp_path / "f.keras"
    assert cli.main(["convert", "torchvision/resnet18", path, "--output", str(output),
                     "--check"]) == 2
    assert "differs from PyTorch by 0.5 relative" in capsys.readouterr().err
    assert not output.exists()


def test_models_lists_the_convertible_checkpoints(capsys):
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    listed = out.split("PyTorch checkpoints")[1]
    for name in convert.TORCH_ARCHITECTURES:
        assert f"  {name}\n" in listed
    assert np.all([name.split("/")[0] in ("torchvision", "timm", "smp")
                   for name in convert.TORCH_ARCHITECTURES])
