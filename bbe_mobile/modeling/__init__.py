"""The network and what defines it: ``network`` (``build_bbe``: backbone, ASPP, decoder, heads), ``targets``
(per-cell training targets from instance masks) and ``bundle`` (a trained model on disk: ``model.keras`` +
``bbe.json``)."""
