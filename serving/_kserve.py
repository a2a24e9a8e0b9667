"""kserve, imported without reading our command line.

``kserve.model_server`` parses ``sys.argv`` when first imported (its own server options); under ``shopfloor run
--config ...`` that parse takes ``--config`` for its ``--configure_logging`` and exits. Every serving module
imports kserve through here, so the first import sees an empty command line.
"""

import sys

_argv, sys.argv = sys.argv, sys.argv[:1]
try:
    from kserve import Model, errors
    from kserve.errors import InvalidInput
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane
    from kserve.protocol.infer_type import InferInput, InferOutput, InferRequest, InferResponse
    from kserve.protocol.model_repository_extension import ModelRepositoryExtension
    from kserve.protocol.rest.v1_endpoints import register_v1_endpoints
    from kserve.protocol.rest.v2_datamodels import InferenceRequest
    from kserve.protocol.rest.v2_endpoints import register_v2_endpoints
finally:
    sys.argv = _argv

__all__ = [
    "DataPlane",
    "InferInput",
    "InferOutput",
    "InferRequest",
    "InferResponse",
    "InferenceRequest",
    "InvalidInput",
    "Model",
    "ModelRepository",
    "ModelRepositoryExtension",
    "errors",
    "register_v1_endpoints",
    "register_v2_endpoints",
]
