"""What a step needs on a cluster and nowhere else: S3 endpoint and credentials from a Secret.

Secrets reach the pod as environment variables through kfp-kubernetes, so compiled YAML names the Secret but
never holds a credential (kubeflow/pipelines #9689). The local runner ignores Kubernetes platform settings, so
a local run keeps the environment it was started in.
"""

from kfp import kubernetes
from kfp.dsl import PipelineTask

__all__ = ["S3_KEYS", "S3_SECRET", "with_s3_access"]

S3_SECRET = "shopfloor-s3"
S3_KEYS = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def with_s3_access(task: PipelineTask) -> PipelineTask:
    """Give a step the S3 endpoint and credentials of Secret ``shopfloor-s3`` (infra/kserve/base/secret.yaml)."""
    return kubernetes.use_secret_as_env(task, secret_name=S3_SECRET, secret_key_to_env={k: k for k in S3_KEYS})
