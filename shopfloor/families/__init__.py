"""Model families: everything specific to one kind of model, in one folder each, found through the registry.

A family holds its labelling, model builder and keras-tuner HyperModel, training, metrics and gate, explanation,
search problem and served scores; steps, pipelines, the server and the monitor ask ``registry`` for it by key.
"""
