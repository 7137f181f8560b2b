"""From a Keras bundle to phone formats and back: ``images`` (the real images export calibrates and verifies
on), ``artifact_info`` (the ``bbe`` metadata; reading and describing artifacts), ``tflite_metadata``,
``calibration`` (full-int8 TFLite ranges), ``runtime`` (one runner interface for Keras, TFLite, ONNX and
Core ML), ``serving`` (the graph and metadata every converter shares), ``tflite``, ``coreml`` and ``onnx``
(one converter each), ``convert`` (targets, precisions and the verification gate) and ``verify`` (agreement of an artifact with its Keras model)."""
