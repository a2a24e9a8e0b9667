"""The container image every shopfloor component runs in, tagged with the package version unless a plant says.

One image for all steps (built from infra/images/Dockerfile) keeps the compiled YAML reproducible: the tag
moves only when the package version does, as in google-cloud-pipeline-components' ``_image.py``. A plant that
builds and pushes the image to its own registry compiles with ``shopfloor compile --image REGISTRY/NAME:TAG``
(or ``$SHOPFLOOR_IMAGE``): every executor and the InferenceService the deploy step creates then use that image.

The edge runtime's image (``infra/edge/Dockerfile``: no TensorFlow) is named after that reference, as
``infra/images/build.sh`` tags it: ``REGISTRY/NAME-edge:TAG``. An InferenceService with ``deploy.runtime:
edge-float32|edge-int8`` runs it as its predictor, so the same ``--image`` moves it too.
"""

import os
import re

from shopfloor import __version__

__all__ = [
    "DEFAULT_IMAGE",
    "EDGE_IMAGE",
    "IMAGE",
    "IMAGE_ENV",
    "IMAGE_REFERENCE",
    "IMAGE_REPOSITORY",
    "SERVING_IMAGE",
    "edge_image",
]

IMAGE_ENV = "SHOPFLOOR_IMAGE"
IMAGE_REPOSITORY = "ghcr.io/shopfloor-ml/shopfloor"
DEFAULT_IMAGE = f"{IMAGE_REPOSITORY}:{__version__}"
# registry/name[:tag][@sha256:digest], as docker and Kubernetes accept it (lowercase path, at least a name)
IMAGE_REFERENCE = re.compile(
    r"^(?:[a-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
IMAGE = os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE
# The KServe predictor and explainer run the same image (serving/ is installed in it); one tag to move.
SERVING_IMAGE = IMAGE


def edge_image(image: str) -> str:
    """The edge runtime's image for a component image reference: ``-edge`` after the name, the same tag.

    A digest (``@sha256:...``) pins the component image's content, not the edge image's, so it is dropped and the
    tag kept (``latest`` when there is none), as ``infra/images/build.sh`` tags what it builds.
    """
    reference = image.split("@", 1)[0]
    name, colon, tag = reference.rpartition(":")
    if not colon or "/" in tag:  # no tag: the ':' (if any) was a registry port
        name, tag = reference, "latest"
    return f"{name}-edge:{tag}"


# The KServe predictor with an edge runtime (deploy.runtime edge-float32 | edge-int8); built from infra/edge/Dockerfile.
EDGE_IMAGE = edge_image(IMAGE)
