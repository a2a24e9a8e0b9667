"""The file formats and stores every layer shares: steps, model families, the server and the monitor.

A step writes and the next reads through these types only, so no step imports another step's modules:
labelled windows, image manifests and image sets, the model artifact, the model store, payload and feedback
records. Contracts import only ``shopfloor.common``.
"""
