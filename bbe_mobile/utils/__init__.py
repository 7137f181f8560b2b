"""Helpers every stage uses and that know nothing of the model: default locations (``paths``) and writing files
whole or not at all (``atomic``)."""
