"""Build the Lambda bundle zip reproducibly: same sources, same bytes."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import zipfile
from pathlib import Path

# A fixed timestamp and mode make the archive depend only on file paths and contents.
_EPOCH = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o644 << 16


def bundle_source_dir() -> Path:
    """The directory of the ``step_lambdas`` package that goes into the zip."""
    spec = importlib.util.find_spec("step_lambdas")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the step_lambdas package is not importable; run `uv sync` first")
    return Path(next(iter(spec.submodule_search_locations)))


def build_bundle(source_dir: Path | None = None) -> bytes:
    """The zip of the bundle's Python sources (no caches), ``step_lambdas/`` at its root."""
    source_dir = source_dir or bundle_source_dir()
    files = sorted(
        path
        for path in source_dir.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            info = zipfile.ZipInfo(
                f"{source_dir.name}/{path.relative_to(source_dir).as_posix()}", _EPOCH
            )
            info.external_attr = _FILE_MODE
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def bundle_sha256(data: bytes) -> str:
    """The zip's digest as Lambda reports it in ``CodeSha256`` (base64 of SHA-256)."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()
