"""The edge runtime: a published model's TFLite export served without TensorFlow.

LiteRT (``ai-edge-litert``), NumPy and the standard library's HTTP server answer KServe V1 and Open Inference V2
requests as the full server does, an MQTT loop turns sensor windows or images into alarms, payload logs go to the
store (spooled locally while it is away), and new published versions are pulled and swapped in atomically.
Start it with ``shopfloor-edge`` or ``python -m shopfloor.edge`` (``shopfloor.edge.cli``).
"""
