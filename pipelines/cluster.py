"""What a step needs on a cluster and nowhere else: S3 access and the credentials a config names, from Secrets.

Secrets reach the pod through kfp-kubernetes, so compiled YAML names the Secret but never holds a credential
(kubeflow/pipelines #9689). The S3 endpoint and keys are fixed names, set as environment variables; the
credentials a config names (``url_env: PLANT_DB_URL``, ``alerts.token_env``...) differ from plant to plant while
the YAML is one, so the Secret ``shopfloor-credentials`` is mounted whole, a file per key, where
``shopfloor.common.credentials`` looks for a variable that is not set. The local runner ignores Kubernetes
platform settings, so a local run keeps the environment it was started in.
"""

from kfp import kubernetes
from kfp.dsl import PipelineTask

from shopfloor.common.credentials import CREDENTIALS_DIR, CREDENTIALS_SECRET

__all__ = ["S3_KEYS", "S3_SECRET", "with_step_secrets"]

S3_SECRET = "shopfloor-s3"
S3_KEYS = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def with_step_secrets(task: PipelineTask) -> PipelineTask:
    """Give a step Secret ``shopfloor-s3`` as S3 variables and Secret ``shopfloor-credentials`` as files.

    Templates: infra/kserve/base/secret.yaml and infra/kfp/credentials-secret.yaml; the second is optional.
    """
    kubernetes.use_secret_as_env(task, secret_name=S3_SECRET, secret_key_to_env={k: k for k in S3_KEYS})
    return kubernetes.use_secret_as_volume(
        task, secret_name=CREDENTIALS_SECRET, mount_path=CREDENTIALS_DIR, optional=True
    )
