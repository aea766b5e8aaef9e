"""One run, many front doors: explain batches, write them, finish the run.

Modules: ``explainer`` (a ``Batch`` through the CAM engine and metrics), ``run`` (the
steps every run shares), ``analyzer`` (the Python API), ``comparison`` (two models on the
same images), ``progress`` (images per second with an ETA).
"""
