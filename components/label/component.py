"""KFP wrapper for label: typed inputs and outputs only; the logic is ``components.label.labeling``."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from components._image import IMAGE

__all__ = ["label", "label_anomalies"]


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def label(
    sensors: Input[Dataset],
    events: Input[Dataset],
    data_schema: dict,
    labeling: dict,
    windows: Output[Dataset],
    class_balance: Output[Metrics],
):
    """Join readings with failure events into labelled windows: fails within the horizon, and RUL.

    Args:
        sensors: validated readings from ingest.
        events: validated events from ingest.
        data_schema: the data schema; its failure_values name the event types that count as a failure.
        labeling: horizon_hours, window, stride, rul_cap_hours, split fractions and seed (``LabelingConfig``).
        windows: folder with windows.npz and labels.json.
        class_balance: windows and positive rate per split.
    """
    import pandas as pd

    from components.common.config import DataConfig, LabelingConfig, validated
    from components.common.progress import report_progress
    from components.label.labeling import label_windows, sensor_features, write_windows

    config = validated(LabelingConfig, labeling, "pipeline parameter labeling")
    failure_values = validated(DataConfig, data_schema, "pipeline parameter data_schema").failure_values
    table = pd.read_parquet(sensors.path)
    features = sensor_features(table, sensors.metadata.get("features"))
    result = label_windows(table, pd.read_parquet(events.path), features, failure_values, config)
    write_windows(result, windows.path)
    balance = result.info["class_balance"]
    report_progress(
        f"{result.failure.size:,} windows; failing within {config.horizon_hours:g} h: "
        + ", ".join(f"{k} {v['positive_rate']:.1%}" for k, v in balance.items())
    )
    windows.metadata.update({"windows": int(result.failure.size), "features": features})
    for split, counts in balance.items():
        class_balance.log_metric(f"{split}_windows", counts["windows"])
        class_balance.log_metric(f"{split}_positive_rate", counts["positive_rate"])


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def label_anomalies(
    sensors: Input[Dataset],
    events: Input[Dataset],
    data_schema: dict,
    labeling: dict,
    windows: Output[Dataset],
    class_balance: Output[Metrics],
):
    """Cut readings into windows marked normal or abnormal (near an anomaly event), split in time order per asset.

    Args:
        sensors: validated readings from ingest.
        events: validated events from ingest.
        data_schema: the data schema; its failure_values name the event types that mark abnormal operation.
        labeling: window, stride, before_hours, after_hours, validation_fraction, test_fraction
            (``AnomalyLabelingConfig``).
        windows: folder with windows.npz (failure = abnormal window) and labels.json.
        class_balance: windows and abnormal rate per part.
    """
    import pandas as pd

    from components.common.config import AnomalyLabelingConfig, DataConfig, validated
    from components.common.progress import report_progress
    from components.label.anomaly import label_anomaly_windows
    from components.label.labeling import sensor_features, write_windows

    config = validated(AnomalyLabelingConfig, labeling, "pipeline parameter labeling")
    anomaly_values = validated(DataConfig, data_schema, "pipeline parameter data_schema").failure_values
    table = pd.read_parquet(sensors.path)
    features = sensor_features(table, sensors.metadata.get("features"))
    result = label_anomaly_windows(table, pd.read_parquet(events.path), features, anomaly_values, config)
    write_windows(result, windows.path)
    balance = result.info["class_balance"]
    report_progress(
        f"{result.failure.size:,} windows; abnormal: "
        + ", ".join(f"{k} {v['positive_rate']:.1%}" for k, v in balance.items())
    )
    windows.metadata.update({"windows": int(result.failure.size), "features": features})
    for split, counts in balance.items():
        class_balance.log_metric(f"{split}_windows", counts["windows"])
        class_balance.log_metric(f"{split}_abnormal_rate", counts["positive_rate"])
