"""``kneo_client.models``: every public model of the wire layer, under one module object."""

from __future__ import annotations

import importlib

import kneo_proto.models
from tests.client.test_import_paths import modules_loaded_after


def test_models_module_is_the_same_object_by_every_import_form() -> None:
    import kneo_client
    import kneo_client.models
    from kneo_client import models

    assert models is kneo_client.models
    assert models is importlib.import_module("kneo_client.models")
    assert models.__name__ == "kneo_client.models"


def test_models_module_exports_every_public_model_of_the_wire_layer() -> None:
    from kneo_client import models

    assert models.__all__ == kneo_proto.models.__all__
    for name in kneo_proto.models.__all__:
        assert getattr(models, name) is getattr(kneo_proto.models, name), name


def test_a_model_imports_by_name_from_kneo_client_models() -> None:
    from kneo_client.models import UNSET, RunCreateRequest

    assert RunCreateRequest(spec_id="s").environment is UNSET


def test_models_load_only_when_first_used() -> None:
    """``import kneo_client`` leaves the models module (and msgspec) unloaded."""
    watched = ["kneo_client.models", "kneo_proto.models", "msgspec"]
    assert modules_loaded_after("import kneo_client", watched) == []
    assert modules_loaded_after("from kneo_client import models", watched) == watched
    assert modules_loaded_after("import kneo_client.models", watched) == watched
