"""Data: image files and labels, the one image reader, datasets, the data module.

Modules: ``images`` (reading and preprocessing; no torch at import, so writer workers
start light), ``files`` (finding images, class folders, masks), ``dataset``
(``ThermalImageDataset``, ``collate``), ``datamodule`` (``ThermalDataModule``),
``synthetic`` (faces with known lesions), ``discovery`` (checkpoints and data sets under a
folder).
"""
