"""What a model family provides to the steps: one class per family, asked for by key through the registry.

The steps (label, train, evaluate, explain, hpo) are the same code for every family: they read the step's
artifacts, ask the family to do what is specific to it, and write the outputs the same way. A family reads the
pipeline parameters it needs from ``StepInputs`` (the same four dicts for every family, empty where a family has no
use for them) and imports TensorFlow only inside the methods that build or run a model, so asking the registry
costs nothing.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Protocol, TypeVar

import numpy as np

from shopfloor.common.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from shopfloor.common.config import HpoConfig
    from shopfloor.contracts.windows import LabelledWindows
    from shopfloor.families.search import SearchProblem

__all__ = [
    "DataKind",
    "EvaluationResult",
    "ExplainRequest",
    "Explained",
    "ModelFamily",
    "ModelRecord",
    "Rendered",
    "SensorLabels",
    "StepInputs",
    "Trained",
]

DataKind = Literal["windows", "images"]


@dataclasses.dataclass(frozen=True)
class StepInputs:
    """The pipeline parameters a step hands to its family, validated by the family into its own config sections.

    ``data_schema`` is the data section without locations (sensors or images), ``split`` how images are split,
    ``gate`` the quality gate (and decision threshold) and ``edge`` the edge export; each is ``{}`` where unused.
    """

    data_schema: dict = dataclasses.field(default_factory=dict)
    split: dict = dataclasses.field(default_factory=dict)
    gate: dict = dataclasses.field(default_factory=dict)
    edge: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class SensorLabels:
    """Labelled windows of a sensor table, the line that sums them up, and what a window's positive label means."""

    windows: LabelledWindows
    summary: str
    rate_name: str


@dataclasses.dataclass(frozen=True)
class Trained:
    """What training left besides the model folder: curves, the dashboard's model metadata and final metrics."""

    history: dict[str, list[float]]
    metadata: dict[str, Any]
    metrics: dict[str, float]


class EvaluationResult(Protocol):
    """What every family's evaluation holds (a frozen dataclass): test metrics, the gate, the dashboard's curves."""

    __dataclass_fields__: ClassVar[dict[str, Any]]  # champion/challenger replaces the gate with dataclasses.replace

    @property
    def metrics(self) -> dict[str, float]:
        """Scalar metrics of the test split."""

    @property
    def gate(self) -> dict:
        """The gate's verdict: ``passed`` and its ``checks``."""

    @property
    def confusion_matrix(self) -> list[list[int]]:
        """Counts by true (rows) and decided (columns) class."""

    @property
    def roc(self) -> dict[str, list[float]] | None:
        """ROC curve points (fpr, tpr, thresholds), or None where the test data has one class only."""


@dataclasses.dataclass(frozen=True)
class ExplainRequest:
    """What the explain step asks of a family besides the model and data: names, sample size, the model store.

    The model store holds operators' feedback on earlier explanations (``<model_name>/feedback/``), which a family
    may show next to its own.
    """

    model_name: str
    model_store_uri: str = ""
    sample_size: int = 256


@dataclasses.dataclass(frozen=True)
class Explained:
    """An explanation as people read it: the HTML report, the dashboard's Markdown, the global importances.

    ``importance`` is what drives the model's score overall, by input (sensor, summary, image region...), logged
    as the step's metrics; ``progress`` is the one line ``shopfloor run`` shows.
    """

    report: str
    summary: str
    importance: dict[str, float]
    progress: str


DataT = TypeVar("DataT")
ResultT = TypeVar("ResultT", bound=EvaluationResult)


@dataclasses.dataclass(frozen=True)
class ModelRecord:
    """What a report and model card quote besides the evaluation: the model, its training and its data."""

    model_name: str
    version: str
    model_info: dict
    history: dict[str, list[float]]
    profile: dict
    # test metrics of the engines trained beside the one that answers (a classical challenger), by engine name
    alternatives: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Rendered:
    """An evaluation as people read it: the HTML report, the dashboard's Markdown summary, the model card."""

    report: str
    summary: str
    model_card: str


class ModelFamily(abc.ABC, Generic[DataT, ResultT]):
    """One kind of model: its training, evaluation, search problem and how its results are shown.

    ``key`` is the registry key, written as ``model_type`` into every model it trains (the server and the monitor
    read it back); ``data_kind`` names the contract its data artifact follows (``contracts.windows`` or
    ``contracts.images``); ``score_output`` is the served output whose distribution the monitor follows. ``DataT``
    is what the family evaluates on, ``ResultT`` its evaluation.
    """

    key: ClassVar[str]
    data_kind: ClassVar[DataKind]
    score_output: ClassVar[str]
    # the kserve.Model subclass the model server runs for this family, as ``module:Class`` ("" = not servable yet);
    # a name, not an import, because the server sits above the families
    served_model: ClassVar[str] = ""
    # the test metrics ``shopfloor run`` prints after a run, in this order (those the evaluation has)
    headline_metrics: ClassVar[tuple[str, ...]] = ()

    def alarm_threshold(self, model_info: dict, blessing: dict) -> float:
        """The score at which a served answer raises an alarm: by default the threshold trained into the model."""
        return float(model_info["threshold"]["value"])

    def label_sensors(
        self,
        sensors: pd.DataFrame,
        events: pd.DataFrame,
        features: list[str],
        failure_values: list[str],
        labeling: dict,
        sites: dict | None = None,
    ) -> SensorLabels:
        """Cut an ingested sensor table into windows labelled for this family (families that read windows).

        ``sites`` (passed only when the config has per-site overlays) maps a site to its overlay, whose
        ``labeling`` keys replace ``labeling``'s for that site's assets.
        """
        raise ConfigError(
            "pipeline parameter family", f"{self.key} reads {self.data_kind}", expected="a family that reads windows"
        )

    @abc.abstractmethod
    def train(self, data_path: str, hyperparameters: dict, inputs: StepInputs, model_dir: str) -> Trained:
        """Train on the data artifact with these hyperparameters and write the model folder to ``model_dir``."""

    def load_model(self, model_dir: str) -> Any:
        """The model evaluation scores (a new one or production's): by default the engine training chose."""
        from shopfloor.families.classical import load_scoring_model

        return load_scoring_model(model_dir)

    @abc.abstractmethod
    def load_evaluation_data(self, data_path: str, inputs: StepInputs) -> DataT:
        """The held-out data of the data artifact, read once for both the new model and production's."""

    @abc.abstractmethod
    def evaluate(self, model: Any, model_info: dict, data: DataT, inputs: StepInputs) -> ResultT:
        """Score a model (the new one or production's) on the held-out data and apply the quality gate."""

    @abc.abstractmethod
    def comparable_inputs(self, model_info: dict, data: DataT) -> dict:
        """What must be equal for production's model to score the same data (features and window, classes...)."""

    @abc.abstractmethod
    def champion_metric(self, result: ResultT) -> tuple[str, Literal[">=", "<="]]:
        """The metric the new model must match production's on, and which way is better."""

    @abc.abstractmethod
    def reference_scores(self, result: ResultT) -> np.ndarray:
        """The test scores monitoring compares served scores with (a sample goes into the blessing)."""

    @abc.abstractmethod
    def confusion_labels(self, result: ResultT) -> list[str]:
        """Row and column names of the confusion matrix."""

    @abc.abstractmethod
    def render(self, result: ResultT, record: ModelRecord, data: DataT) -> Rendered:
        """The report, summary and model card of an evaluation."""

    @abc.abstractmethod
    def progress_line(self, result: ResultT) -> str:
        """The one line ``shopfloor run`` shows for the evaluation (headline metrics, before the gate's verdict)."""

    @abc.abstractmethod
    def explain(
        self, model: Any, model_info: dict, data_path: str, inputs: StepInputs, request: ExplainRequest
    ) -> Explained:
        """Explain the model on held-out data of the data artifact: what drives its score, shown on chosen cases."""

    @abc.abstractmethod
    def search_problem(
        self, data_path: str, hyperparameters: dict, inputs: StepInputs, config: HpoConfig
    ) -> SearchProblem:
        """What a hyperparameter search over this family fits, validates and maximizes, from the data artifact."""
