"""KFP wrapper for ingest: typed inputs and outputs only; the logic is ``shopfloor.components.ingest.ingest``."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Markdown, Output

from shopfloor.components._image import IMAGE

__all__ = ["fingerprint_sources", "ingest", "ingest_images"]


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def fingerprint_sources(data_uri: str, other_uri: str, more_uris: list) -> str:
    """Fingerprint the content of the data sources, so ingest's cache key follows the data and not its URIs.

    Never cached itself (``pipelines/caching.py``): it is what tells a run that the data under a URI changed.

    Args:
        data_uri: the main source: the sensor table, or the image folder (a path or ``s3://`` URI), or a source
            block as JSON (a database, broker or OPC UA server: fingerprinted as new every run).
        other_uri: a second source (the events table; '' = none).
        more_uris: further sources (annotation exports); each a file, folder or prefix.

    Returns:
        A sha256 over every source's content (local bytes, or S3 ETags and sizes).
    """
    import hashlib
    import uuid

    from shopfloor.common.fingerprint import fingerprint
    from shopfloor.common.progress import report_progress
    from shopfloor.common.sources import is_live, parse_location

    digest = hashlib.sha256()
    for uri in [data_uri, other_uri, *more_uris]:
        if uri:  # a database, broker or OPC UA server changes under the same block: never a cache hit
            content = uuid.uuid4().hex if is_live(parse_location(uri, "data_uri")) else fingerprint(uri)
            digest.update(f"{uri}\0{content}\n".encode())
    found = digest.hexdigest()
    report_progress(f"sources fingerprint {found[:16]}")
    return found


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def ingest(
    sensors_uri: str,
    events_uri: str,
    data_schema: dict,
    sensors: Output[Dataset],
    events: Output[Dataset],
    profile: Output[Artifact],
    profile_summary: Output[Markdown],
    sources_fingerprint: str = "",
):
    """Read sensor readings and maintenance events (CSV/Parquet, local or s3://), validate, profile.

    Args:
        sensors_uri: CSV or Parquet table of sensor readings, a path or ``s3://bucket/key``, or a source block as
            JSON (``{"kind": "sql", ...}``: ``shopfloor.common.sources``).
        events_uri: maintenance events (failures and others), the same way; '' = the plant records none.
        data_schema: what the columns mean: sensor_columns, event_columns, failure_values (``DataConfig``), and a
            fleet's per-site overlays under ``sites`` (not read here).
        sensors: validated readings as Parquet with canonical id column names.
        events: validated events as Parquet.
        profile: JSON data profile, the reference for drift monitoring and the model card.
        profile_summary: the profile as the dashboard shows it (rows, events, per-feature statistics, hashes).
        sources_fingerprint: the sources' content fingerprint (``fingerprint_sources``); not read, it is the cache
            key that makes a cached ingest follow the data instead of its URIs ('' outside a pipeline).
    """
    from shopfloor.common.config import DataConfig, validated
    from shopfloor.common.fleet import fleet_schema
    from shopfloor.common.progress import report_progress
    from shopfloor.common.sources import parse_location
    from shopfloor.common.storage import atomic_write_bytes
    from shopfloor.components.ingest.ingest import ingest as run_ingest
    from shopfloor.components.ingest.ingest import write_outputs
    from shopfloor.components.ingest.summary import sensor_profile_markdown

    sensors_location, events_location = (
        parse_location(sensors_uri, "sensors_uri"),
        parse_location(events_uri, "events_uri"),
    )
    config = validated(
        DataConfig,
        {**fleet_schema(data_schema)[0], "sensors": sensors_location, "events": events_location},
        "pipeline parameter data_schema",
    )
    result = run_ingest(config.sensors, config.events, config)
    write_outputs(result, sensors.path, events.path, profile.path)
    atomic_write_bytes(profile_summary.path, sensor_profile_markdown(result.profile).encode())
    report_progress(
        f"{len(result.sensors):,} readings of {result.profile['assets']} assets, "
        f"{len(result.features)} features; {len(result.events):,} events"
    )
    sensors.metadata.update(
        {
            "rows": len(result.sensors),
            "features": result.features,
            "sha256": result.profile["sources"]["sensors"]["sha256"],
            "sources_fingerprint": sources_fingerprint,
        }
    )
    events.metadata.update({"rows": len(result.events)})


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def ingest_images(
    data_root: str,
    image_schema: dict,
    manifest: Output[Dataset],
    skipped: Output[Artifact],
    profile: Output[Artifact],
    profile_summary: Output[Markdown],
    sources_fingerprint: str = "",
):
    """Read part images (PNG/JPEG, folder or s3://) and their label manifest; validate every file; profile.

    Args:
        data_root: the data folder or s3:// prefix holding images/ and labels.csv.
        image_schema: images, manifest, classes, ok_class, image_size, color_mode, on_invalid, extensions
            (``ImageDataConfig``).
        manifest: Parquet image manifest: path, sha256, label, width, height, mode, format, bytes, uri.
        skipped: JSON report of the files left out and why (``on_invalid: skip``).
        profile: JSON profile: class counts and pixel statistics (monitoring's reference).
        profile_summary: the profile as the dashboard shows it (classes, defect share, pixel statistics).
        sources_fingerprint: the image folder's content fingerprint, ingest's cache key (see ``ingest``).
    """
    from shopfloor.common.config import validated
    from shopfloor.common.progress import report_progress
    from shopfloor.common.storage import atomic_write_bytes
    from shopfloor.common.vision_config import ImageDataConfig
    from shopfloor.components.ingest.images import ingest_images as ingest_folder
    from shopfloor.components.ingest.images import write_outputs
    from shopfloor.components.ingest.summary import image_profile_markdown

    config = validated(ImageDataConfig, image_schema, "pipeline parameter image_schema")
    result = ingest_folder(data_root, config)
    write_outputs(result, manifest.path, skipped.path, profile.path)
    atomic_write_bytes(profile_summary.path, image_profile_markdown(result.profile).encode())
    counts = result.profile["class_counts"]
    report_progress(
        f"{len(result.manifest):,} images ({', '.join(f'{k} {v}' for k, v in counts.items())}); "
        f"{len(result.skipped)} skipped"
    )
    manifest.metadata.update(
        {"images": len(result.manifest), "classes": config.classes, "sources_fingerprint": sources_fingerprint}
    )
