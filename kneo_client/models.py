"""The request and response models of the Kneo /v1 API, for use in your code.

Every public name of ``kneo_proto.models`` is here under the same name: the models
(``RunCreateRequest``, ``RunStatusResponse``, ...), their dict forms for type checkers
(``RunCreateRequestDict``, ...), the ``Literal`` types of enum-like values (``RunStatus``,
``SortOrder``, ...), the known values of open fields (``RUN_STATUS_COMPLETED``, ...) and
``UNSET``::

    from kneo_client.models import RunCreateRequest

    run = client.platform.runs.create(RunCreateRequest(spec_id="my-spec"))
    print(run.to_json())

``import kneo_client.models`` and ``from kneo_client import models`` give this same module.
"""

from __future__ import annotations

# The list of names is kneo_proto.models.__all__, so a model added there is exported here too.
from kneo_proto.models import *  # noqa: F403
from kneo_proto.models import __all__ as __all__
