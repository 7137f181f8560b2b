"""Reading a JSON object from an untrusted file: one ``JsonFileError`` line for a missing file, bytes that are not
JSON (bad UTF-8, syntax, nesting too deep for the parser) or a top level that is not an object."""
from __future__ import annotations

import json
import os
from pathlib import Path


def show_value(value) -> str:
    """A short, one-line picture of an untrusted value for an error message: its type and its repr, cut at 40
    characters (line breaks escaped)."""
    text = repr(value).replace("\n", " ")
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"


class JsonFileError(ValueError):
    """A file that does not hold a JSON object; the message starts with the path."""


def read_json_object(path: str | os.PathLike) -> dict:
    """The JSON object in ``path``; JsonFileError otherwise (callers may re-raise it as their own error)."""
    try:
        doc = json.loads(Path(path).read_bytes())
    except FileNotFoundError:
        raise JsonFileError(f"{path}: not found") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, deep nesting
        raise JsonFileError(f"{path}: not JSON ({type(exc).__name__})") from None
    if not isinstance(doc, dict):
        raise JsonFileError(f"{path}: the top level must be a JSON object")
    return doc
