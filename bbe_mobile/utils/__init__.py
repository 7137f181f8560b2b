"""Helpers every stage uses and that know nothing of the model: default locations (``paths``), writing files
whole or not at all (``atomic``) and reading a JSON object from an untrusted file (``json_files``)."""
