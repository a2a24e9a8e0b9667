"""Inspection throughput and latency: in-process Keras, the served model over HTTP, and the TFLite variants.

Trains the default CNN briefly on generated part images (speed, not accuracy, is measured here), then on the same
real PNG test images measures, side by side in one run: Keras ``model.predict`` in-process, the model served by
``python -m shopfloor.serving.server`` (its own process, V1 ``:predict`` with base64 PNG files, one persistent
connection), and the TFLite float32 and int8 models on ``tf.lite.Interpreter`` (what an old edge PC runs, through
LiteRT).
Each path reports p50 latency for one image and images per second for batches of 32; the ratios to Keras
``predict`` are the figures.

    python bench/vision.py [--images 300] [--requests 200] [--short]

``--short`` (a quick check that it runs, for CI): 60 images, one training epoch, 5 timed calls per path and 2
batches for throughput; same table.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from serving_latency import Client, deploy, time_calls

BATCH = 32


def train_small_inspector(root: Path, images: int, epochs: int = 3):
    """Demo part images -> ingest -> a CNN trained briefly and its TFLite variants; returns them and the data."""
    from shopfloor.common.vision_config import ImageDataConfig, ImageSplitConfig
    from shopfloor.components.ingest.images import ingest_images
    from shopfloor.contracts.images import load_image_set
    from shopfloor.contracts.model_artifact import write_model
    from shopfloor.demo.parts import PartsDataSpec, write_parts_data
    from shopfloor.families.visual_inspection.config import CnnConfig, TfliteConfig
    from shopfloor.families.visual_inspection.model import train_vision_model
    from shopfloor.families.visual_inspection.tflite import export_tflite, write_tflite

    write_parts_data(root / "data", PartsDataSpec(count=images))
    config = ImageDataConfig()
    image_set = load_image_set(
        ingest_images(str(root / "data"), config).manifest, config, ImageSplitConfig(), root=str(root / "data")
    )
    result = train_vision_model(image_set, CnnConfig(epochs=epochs))
    exported = export_tflite(result.model, image_set, result.info["threshold"]["value"], TfliteConfig())
    result.info["edge"] = exported.info
    write_model(result, str(root / "model"))
    write_tflite(exported, str(root / "model" / "edge"))
    return result.model, exported, image_set


def rate(call, batches: list[np.ndarray], count: int) -> float:
    """Images per second over ``count`` calls on batches of ``BATCH``."""
    _, wall = time_calls(call, batches, count)
    return count * BATCH / wall


def main() -> None:
    """Run every path on the same test images and print the table and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--short", action="store_true", help="60 images, 1 epoch, 5 calls per path (CI)")
    args = parser.parse_args()
    epochs, batch_calls = 3, 20
    if args.short:
        args.images, args.requests, epochs, batch_calls = 60, 5, 1, 2
    from shopfloor.families.visual_inspection.tflite import tflite_predict

    with tempfile.TemporaryDirectory(prefix="shopfloor-bench-vision-") as scratch:
        root = Path(scratch)
        model, exported, image_set = train_small_inspector(root, args.images, epochs)
        test = image_set.part("test")
        pixels = test.images.astype(np.float32)
        singles = [pixels[i : i + 1] for i in range(len(pixels))]
        batches = [np.resize(pixels, (BATCH, *pixels.shape[1:]))]
        files = [(root / "data" / p).read_bytes() for p in test.paths]
        bodies = [
            json.dumps({"instances": [{"image_bytes": {"b64": base64.b64encode(f).decode()}}]}).encode() for f in files
        ]
        batch_body = json.dumps(
            {
                "instances": [
                    {"image_bytes": {"b64": base64.b64encode(files[i % len(files)]).decode()}} for i in range(BATCH)
                ]
            }
        ).encode()
        rows = {}
        rows["Keras model.predict"] = (
            np.median(time_calls(lambda x: model.predict(x, verbose=0), singles, args.requests)[0]),
            rate(lambda x: model.predict(x, verbose=0), batches, batch_calls),
        )
        for name, content in exported.models.items():
            rows[f"TFLite {name}"] = (
                np.median(time_calls(lambda x, c=content: tflite_predict(c, x), singles, args.requests)[0]),
                rate(lambda x, c=content: tflite_predict(c, x), batches, batch_calls),
            )
        served = deploy(root / "serving", root / "model", "vi")
        client = Client(served.url)
        try:
            path = "/v1/models/vi:predict"
            rows["served V1 (base64 PNG)"] = (
                np.median(time_calls(lambda body: client.post(path, body), bodies, args.requests)[0]),
                rate(lambda body: client.post(path, body), [batch_body], batch_calls),
            )
        finally:
            client.close()
            from shopfloor.components.deploy.local_target import stop_server

            stop_server(root / "serving", "vi")
    base_latency, base_rate = rows["Keras model.predict"]
    print(f"{len(test.paths)} test images of {test.images.shape[1]}x{test.images.shape[2]}, batch {BATCH}")
    print(f"{'path':<26}{'p50 ms (1 image)':>18}{'images/s':>12}{'latency ratio':>15}{'throughput ratio':>18}")
    for name, (latency, throughput) in rows.items():
        print(
            f"{name:<26}{latency * 1000:>18.2f}{throughput:>12.0f}{latency / base_latency:>15.2f}"
            f"{throughput / base_rate:>18.2f}"
        )
    sizes = {name: record["bytes"] for name, record in exported.info["variants"].items()}
    print("model sizes (bytes): " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()))


if __name__ == "__main__":
    main()
