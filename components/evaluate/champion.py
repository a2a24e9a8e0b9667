"""Champion/challenger: a retrained model replaces the one in production only if it does better on the same data.

Passing the absolute quality gate is not enough after a retrain: the model in production (the champion, named
by ``latest.json`` in the model store) is scored on the new run's held-out windows, and the challenger must
reach at least its score on the scenario's primary metric. A champion that cannot read the new data (other
sensors or window length, e.g. after a deliberate plant change) is not compared, and the report says so.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from shopfloor.common.storage import is_s3_uri, read_tree
from shopfloor.contracts.model_artifact import load_model_info
from shopfloor.contracts.model_store import ModelStore
from shopfloor.families.classical import load_scoring_model

__all__ = ["Champion", "challenge", "load_champion", "versus_production"]


@dataclasses.dataclass
class Champion:
    """The model in production: its version, Keras model and description."""

    version: str
    uri: str
    model: object
    info: dict


def load_champion(
    model_store_uri: str, model_name: str, inputs: dict, loader: Callable[[str], object] = load_scoring_model
) -> Champion | str:
    """The production model if its description matches ``inputs`` (what it reads); otherwise why not, in words.

    ``inputs`` names what must be equal for both models to score the same data: features and window for sensor
    models, classes, image size and colour mode for image models. ``loader`` loads a model folder as the
    family's evaluation scores it (a fleet's site models included).
    """
    latest = ModelStore(model_store_uri).latest(model_name)
    if latest is None:
        return "no model in production yet"
    uri = latest.uri
    folder = read_tree(uri, tempfile.mkdtemp(prefix="shopfloor-champion-")) if is_s3_uri(uri) else Path(uri)
    info = load_model_info(folder)
    differ = [key for key, value in inputs.items() if _plain(info.get(key)) != _plain(value)]
    if differ:
        return f"production model {latest.version} reads other {', '.join(differ)}: not comparable"
    return Champion(version=latest.version, uri=latest.uri, model=loader(str(folder)), info=info)


def _site_metric(key: str, metric: str) -> bool:
    """Whether ``key`` is one site's ``metric`` (``site/<site>/<metric>``)."""
    parts = key.split("/")
    return len(parts) == 3 and parts[0] == "site" and parts[2] == metric


def _plain(value: object) -> object:
    """Tuples as lists, so a JSON round trip does not make equal inputs differ."""
    return [_plain(v) for v in value] if isinstance(value, list | tuple) else value


def challenge(gate: dict, metric: str, op: str, challenger: float, champion: float, champion_version: str) -> dict:
    """The gate with one more check: the challenger's ``metric`` at least as good as production's (``op``)."""
    passed = challenger >= champion if op == ">=" else challenger <= champion
    check = {
        "metric": f"{metric}_vs_production",
        "value": round(challenger, 6),
        "op": op,
        "threshold": round(champion, 6),
        "passed": passed,
        "production_version": champion_version,
    }
    checks = [*gate["checks"], check]
    return {**gate, "checks": checks, "passed": all(c["passed"] for c in checks)}


if TYPE_CHECKING:
    from shopfloor.families.base import EvaluationResult

_Evaluation = TypeVar("_Evaluation", bound="EvaluationResult")  # any family's evaluation (a frozen dataclass)


def versus_production(
    evaluation: _Evaluation,
    metric: str,
    op: str,
    model_store_uri: str,
    model_name: str,
    inputs: dict,
    champion_metrics: Callable[[Champion], dict[str, float]],
    loader: Callable[[str], object] = load_scoring_model,
    by_site: bool = False,
) -> tuple[_Evaluation, str]:
    """The evaluation with the production comparison added to its gate, and a sentence saying what was compared.

    Without a comparable champion the evaluation comes back unchanged and the sentence says why. ``by_site``
    (a fleet whose sites answer with models of their own): every site's ``site/<site>/<metric>`` must also match
    production's at that site, so a new site model never replaces a better one.
    """
    champion = load_champion(model_store_uri, model_name, inputs, loader)
    if isinstance(champion, str):
        return evaluation, champion
    scored = champion_metrics(champion)
    production = scored[metric]
    gate = challenge(evaluation.gate, metric, op, evaluation.metrics[metric], production, champion.version)
    verdict = "beats or ties" if gate["checks"][-1]["passed"] else "does NOT beat"
    for key in sorted(k for k in evaluation.metrics if by_site and _site_metric(k, metric) and k in scored):
        gate = challenge(gate, key, op, evaluation.metrics[key], scored[key], champion.version)
        gate["checks"][-1]["site"] = key.split("/")[1]
        if not gate["checks"][-1]["passed"]:
            verdict = f"site {key.split('/')[1]} does NOT beat"
    sentence = (
        f"{verdict} production {champion.version} on this run's held-out data: {metric} "
        f"{evaluation.metrics[metric]:.4g} vs {production:.4g}"
    )
    return dataclasses.replace(evaluation, gate=gate), sentence
