"""The model: encoder, checkpoint loading, the LightningModule and its losses.

Modules: ``encoder`` (``ThermalEncoder``), ``checkpoints`` (any checkpoint format to an
encoder), ``classifier`` (``ThermalClassifier``), ``losses`` (SupCon), ``batchnorm``
(BatchNorm statistics that track the weights).
"""
