"""The shared harness over every case of the one table of tiny models.

``support.tiny_models.CASES`` holds one tiny configuration per harness run (U-Net's
variants, FCN-32s/16s/8s, DeepLab v1 with and without multi-scale inputs, ...);
``support.harness.check_model`` checks each: logits, declared geometry, a compiled
``fit`` that learns, the ``.keras`` round trip, the exact parameter count, mixed
precision. The architecture tests (``test_<model>.py``) check structure on models
built directly, without this harness.
"""

import pytest
from support.harness import check_model
from support.tiny_models import CASES, export_case

from keras_seg import applications


def test_every_registered_model_has_a_tiny_case():
    names = {c.name for c in CASES}
    missing = sorted(set(applications.MODELS) - names)
    assert not missing, (f"applications.MODELS has {missing} without a case in "
                         "tests/support/tiny_models.py: add a tiny configuration.")
    unknown = sorted(names - set(applications.MODELS))
    assert not unknown, f"cases of unregistered models: {unknown}"


def test_one_export_case_per_registered_model():
    exported = [c.name for c in CASES if c.export]
    assert sorted(exported) == sorted(applications.MODELS), exported
    assert all(export_case(name).name == name for name in applications.MODELS)


def test_case_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), ids


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_model(case, tmp_path):
    model = check_model(case.build, tmp_path=tmp_path, **case.harness_options())
    if case.after_fit is not None:
        case.after_fit(model)
