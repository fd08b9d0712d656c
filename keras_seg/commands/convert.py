"""``keras-seg convert``: a PyTorch checkpoint (torchvision, segmentation_models.pytorch,
timm) to a ``.keras`` model, optionally checked against the PyTorch original."""

from keras_seg.commands.export import _size

#: relative tolerance of ``--check``: max |keras - torch| / max |torch|
CHECK_RTOL = 1e-4


def add_parser(sub):
    """Register the ``convert`` sub-command on ``sub`` (an argparse sub-parsers object).

    Args:
        sub: the object returned by ``ArgumentParser.add_subparsers``.
    """
    p = sub.add_parser(
        "convert", help="convert a torchvision / segmentation_models.pytorch / timm "
        "checkpoint to a .keras model (keras-seg models lists the architectures)",
        description="Build the keras-seg model of ARCH, load the PyTorch CHECKPOINT into it "
        "(all or nothing: any missing, unexpected or mis-shaped key is an error) and save it "
        "as a .keras file. The model takes [0, 1] images (ImageNet normalization inside) "
        "unless --no-normalize. With --check, the PyTorch original (needs torch and the "
        "source package) runs beside it on a random image; a relative gap above 1e-4 is an "
        "error and nothing is written.")
    p.add_argument("arch", help="architecture, e.g. torchvision/deeplabv3_resnet50 or "
                   "smp/Unet-resnet34 (keras-seg models lists them)")
    p.add_argument("checkpoint", help="a .pth / .pt / .bin / .safetensors file, an http(s) "
                   "URL, or a known checkpoint name of ARCH (e.g. COCO_WITH_VOC_LABELS_V1)")
    p.add_argument("--output", required=True, help="the .keras file to write")
    p.add_argument("--check", action="store_true",
                   help="compare with the PyTorch original on a random image")
    p.add_argument("--check-size", type=_size, default=None, metavar="HxW",
                   help="image size of --check (default 256x256)")
    p.add_argument("--no-normalize", dest="normalize", action="store_false",
                   help="leave ImageNet normalization out (the model takes normalized images)")
    p.add_argument("--no-aux", dest="aux", action="store_false",
                   help="drop the checkpoint's auxiliary head, if it has one")
    p.set_defaults(func=run)


def run(args):
    """Run the parsed ``keras-seg convert`` command; return the exit status.

    Args:
        args: the parsed arguments (see :func:`add_parser`).

    Raises:
        ValueError: unknown architecture, a checkpoint that does not fit, a bad output
            path or --check size.
        keras_seg.export.ParityError: --check found a gap above 1e-4 (nothing written).
        keras_seg.export.MissingDependencyError: torch / safetensors / the source
            package missing where needed.
    """
    import os

    from keras_seg import convert
    from keras_seg.export import ParityError
    from keras_seg.visualize import write_atomic

    if not args.output.endswith(".keras"):
        raise ValueError(f"--output must be a .keras file, got {args.output!r}.")
    arch = convert.get(args.arch)
    folder = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"the folder of --output {args.output!r} does not exist.")
    size = args.check_size or (256, 256)
    multiple = arch.input_multiple
    if args.check and (size[0] % multiple or size[1] % multiple):
        raise ValueError(f"--check-size {size[0]}x{size[1]}: {arch.name} takes sides that are "
                         f"multiples of {multiple}.")
    options = {} if args.aux else {"aux": False}
    arch, state = convert.load_state(arch, args.checkpoint)
    model = convert.from_torch(arch, state, normalize=args.normalize, **options)
    import numpy as np

    # trainable parameters: what PyTorch's module.parameters() counts (BN statistics aside)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    print(f"{arch.name}: {trainable:,} parameters ({model.count_params():,} with the "
          f"BatchNorm statistics) loaded into {model.name!r} ({arch.keras_builder})")
    if args.check:
        module = convert.torch_module(arch, state, **options)
        gaps = convert.compare_with_torch(model, arch, module, size)
        worst = 0.0
        for key, (diff, scale) in gaps.items():
            rel = diff / scale if scale else float("inf")
            worst = max(worst, rel)
            print(f"check {key} at {size[0]}x{size[1]}: max |keras - torch| = {diff:.3g}, "
                  f"max |torch| = {scale:.3g}, relative {rel:.3g}")
        if worst > CHECK_RTOL:
            raise ParityError(f"{arch.name}: the converted model differs from PyTorch by "
                              f"{worst:.3g} relative (> {CHECK_RTOL}); {args.output} not written.")
    write_atomic(args.output, model.save, suffix=".keras")
    print(f"wrote {args.output}")
    return 0

