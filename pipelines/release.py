"""The end every scenario pipeline shares: publish and deploy a model only when its evaluation blessed it."""

from kfp import dsl
from kfp.dsl import PipelineTask
from kfp.dsl.pipeline_channel import PipelineChannel

from shopfloor.components._image import SERVING_IMAGE
from shopfloor.components.deploy.component import deploy
from shopfloor.components.publish.component import publish

__all__ = ["release_if_blessed"]


def release_if_blessed(
    evaluated: PipelineTask,
    model: PipelineChannel,
    profile: PipelineChannel,
    model_store_uri: str,
    model_name: str,
    deployment: dict,
    alerts: dict,
) -> tuple[PipelineTask, PipelineTask]:
    """Publish the model (with card, blessing, profile) and deploy it, under ``dsl.If`` on the evaluation's verdict.

    ``alerts`` is the plant's channel: a deploy that rolls back is published there.

    Returns the publish and deploy tasks.
    """
    with dsl.If(evaluated.outputs["Output"] == True, name="quality-gate-passed"):  # noqa: E712 - KFP condition
        published = publish(
            model=model,
            model_card=evaluated.outputs["model_card"],
            blessing=evaluated.outputs["blessing"],
            profile=profile,
            model_store_uri=model_store_uri,
            model_name=model_name,
        ).set_display_name("publish")
        served = deploy(
            model_uri=published.output,
            model_name=model_name,
            deployment=deployment,
            serving_image=SERVING_IMAGE,
            alerts=alerts,
        )
        served.set_display_name("deploy")
    return published, served
