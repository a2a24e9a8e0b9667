"""The container image every shopfloor component runs in, tagged with the package version.

One image for all steps (built from infra/images/Dockerfile) keeps the compiled YAML reproducible: the tag
moves only when the package version does, as in google-cloud-pipeline-components' ``_image.py``.
"""

from shopfloor import __version__

__all__ = ["IMAGE", "IMAGE_REPOSITORY", "SERVING_IMAGE"]

IMAGE_REPOSITORY = "ghcr.io/shopfloor-ml/shopfloor"
IMAGE = f"{IMAGE_REPOSITORY}:{__version__}"
# The KServe predictor and explainer run the same image (serving/ is installed in it); one tag to move.
SERVING_IMAGE = IMAGE
