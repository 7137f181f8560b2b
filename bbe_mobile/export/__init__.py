"""From a Keras bundle to phone formats and back: ``images`` (the real images export calibrates and verifies
on), ``artifact_info`` (the ``bbe`` metadata; reading and describing artifacts), ``tflite_metadata``,
``calibration`` (full-int8 TFLite ranges), ``runtime`` (one runner interface for Keras, TFLite, ONNX and
Core ML), ``convert`` (the converters) and ``verify`` (agreement of an artifact with its Keras model)."""
