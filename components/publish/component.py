"""KFP wrapper for publish: typed inputs and outputs only; the logic is ``shopfloor.components.publish.publish``."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Markdown, Model

from shopfloor.components._image import IMAGE

__all__ = ["publish"]


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def publish(
    model: Input[Model],
    model_card: Input[Markdown],
    blessing: Input[Artifact],
    profile: Input[Artifact],
    model_store_uri: str,
    model_name: str,
) -> str:
    """Copy a blessed model and its model card into the versioned model store.

    Args:
        model: the trained model folder.
        model_card: the model card written by evaluate.
        blessing: evaluate's gate verdict; an unblessed model is refused.
        profile: the ingest data profile, kept with the model as drift monitoring's reference.
        model_store_uri: root of the model store, a local path or ``s3://bucket/prefix``.
        model_name: folder name of the model in the store.

    Returns:
        The URI of the published model version.
    """
    from shopfloor.common.progress import report_progress
    from shopfloor.components.publish.publish import publish_model

    published = publish_model(model.path, model_card.path, blessing.path, model_store_uri, model_name, profile.path)
    report_progress(f"published {published}")
    return published
