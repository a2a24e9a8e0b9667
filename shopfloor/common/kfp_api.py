"""Reaching the Kubeflow Pipelines API as Kubeflow documents it, from a pod, a notebook or a workstation.

In a pod (the monitoring pipeline's retrain trigger, a notebook server) the API is the ``ml-pipeline`` service in
the ``kubeflow`` namespace, whatever namespace the pod runs in, and a multi-user KFP wants a service-account token
with the audience ``pipelines.kubeflow.org``. Kubeflow projects one into pods that carry the label
``access-ml-pipeline: "true"`` (a PodDefault, ``infra/kfp/access-ml-pipeline.yaml``) at
``/var/run/secrets/kubeflow/pipelines/token``, or at ``$KF_PIPELINES_SA_TOKEN_PATH``. The token is read again on
every request (the kubelet rotates it). Elsewhere the host comes from ``--host`` or ``$KF_PIPELINES_ENDPOINT``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

__all__ = [
    "ACCESS_LABEL",
    "IN_CLUSTER_HOST",
    "TOKEN_AUDIENCE",
    "KfpConnection",
    "kfp_client",
    "resolve_connection",
]

IN_CLUSTER_HOST = "http://ml-pipeline.kubeflow.svc.cluster.local:8888"
HOST_ENV = "KF_PIPELINES_ENDPOINT"  # the variable kfp.Client reads itself
TOKEN_PATH_ENV = "KF_PIPELINES_SA_TOKEN_PATH"
DEFAULT_TOKEN_PATH = "/var/run/secrets/kubeflow/pipelines/token"
TOKEN_AUDIENCE = "pipelines.kubeflow.org"
ACCESS_LABEL = ("access-ml-pipeline", "true")  # the pod label Kubeflow's PodDefault selects
NAMESPACE_ENV = "SHOPFLOOR_NAMESPACE"
POD_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


@dataclasses.dataclass(frozen=True)
class KfpConnection:
    """Where the Pipelines API is, which profile namespace runs go to, and the token file, if there is one."""

    host: str
    namespace: str
    token_path: str | None


def _pod_namespace() -> str | None:
    """The namespace this pod runs in (a profile namespace under multi-user Kubeflow), or None outside a pod."""
    path = Path(POD_NAMESPACE_FILE)
    return path.read_text().strip() or None if path.is_file() else None


def resolve_connection(host: str | None = None, namespace: str | None = None) -> KfpConnection:
    """The API host (given, ``$KF_PIPELINES_ENDPOINT``, else the in-cluster service) and the namespace.

    The namespace is the one given, ``$SHOPFLOOR_NAMESPACE``, the pod's own, or ``kubeflow`` (single-user KFP).
    The token is used wherever its file exists: a pod with the PodDefault's projected token, or a path set in
    ``$KF_PIPELINES_SA_TOKEN_PATH``.
    """
    token_path = os.environ.get(TOKEN_PATH_ENV) or DEFAULT_TOKEN_PATH
    return KfpConnection(
        host=(host or os.environ.get(HOST_ENV) or IN_CLUSTER_HOST).rstrip("/"),
        namespace=namespace or os.environ.get(NAMESPACE_ENV) or _pod_namespace() or "kubeflow",
        token_path=token_path if Path(token_path).is_file() else None,
    )


def kfp_client(connection: KfpConnection) -> Any:
    """A ``kfp.Client`` for the connection; with a token file, every request carries it as a bearer token."""
    import kfp
    from kfp.client.set_volume_credentials import ServiceAccountTokenVolumeCredentials

    credentials = ServiceAccountTokenVolumeCredentials(connection.token_path) if connection.token_path else None
    return kfp.Client(host=connection.host, namespace=connection.namespace, credentials=credentials)
