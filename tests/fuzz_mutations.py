"""Hypothesis strategies that mutate valid JSON documents, shared by ``test_fuzz_readers.py`` (the Python readers)
and ``fuzz_corpus.py`` (the files the Swift and Kotlin readers are fuzzed with)."""
from __future__ import annotations

import copy
import json
import math

from hypothesis import strategies as st

LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.integers(-3, 3),
                   st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
VALUES = st.recursive(LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=8)


def _nodes(doc, path=()):
    """Every path (tuple of keys and indices) in a JSON document, the root included."""
    yield path
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        yield from _nodes(value, path + (key,))


def _nudged(value, draw):
    """A nearby wrong value: numbers scaled, negated or pushed past limits; strings cut or extended."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        factor = draw(st.sampled_from([-1, 0, 2, 1e9, 1e-9, 1.5, math.inf, math.nan]))
        result = value * factor if not isinstance(factor, float) or math.isfinite(factor) else factor
        return int(result) if isinstance(value, int) and isinstance(result, float) and math.isfinite(result) \
            else result
    if isinstance(value, str):
        return draw(st.sampled_from([value[: len(value) // 2], value + "\x00", value * 3, "../" + value, "",
                                    value + "\n" + value]))
    return draw(VALUES)


@st.composite
def mutated(draw, valid: dict):
    """``valid`` with one to three mutations: a node replaced by any JSON value, deleted, nudged or duplicated."""
    doc = copy.deepcopy(valid)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_nodes(doc))))
        if not path:
            return draw(VALUES)
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        action = draw(st.sampled_from(["replace", "delete", "nudge", "duplicate"]))
        if action == "replace":
            parent[key] = draw(VALUES)
        elif action == "nudge":
            parent[key] = _nudged(parent[key], draw)
        elif action == "delete":
            del parent[key]
        elif isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
        else:
            parent[key + "_"] = copy.deepcopy(parent[key])
    return doc


@st.composite
def file_text(draw, valid: dict):
    """The text of a mutated document, sometimes cut short (invalid JSON)."""
    text = json.dumps(draw(mutated(valid)))
    return text[: draw(st.integers(0, len(text)))] if draw(st.booleans()) and len(text) > 1 else text
