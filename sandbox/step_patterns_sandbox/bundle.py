"""Build the Lambda bundle zip reproducibly: same sources, same locked dependencies, same bytes.

Two forms share one deterministic zip writer:

- :func:`build_bundle` with no ``vendor_dir``: the ``step_lambdas`` sources only (the sandbox
  deploys this; its workers already have the venv's ``requests``).
- :func:`build_package`: the deployable zip, the sources plus the runtime dependencies the
  Lambda Python runtime does not provide (``requests`` and its dependencies), vendored from
  the exact versions and hashes in ``uv.lock``.

Vendoring installs the locked *pure-Python* wheels with ``uv pip install --target --no-deps
--require-hashes`` instead of copying the venv's site-packages: the venv holds wheels for the
machine that built it (``charset-normalizer`` ships a manylinux_2_28 x86_64 binary that the
python3.11 runtime's Amazon Linux 2, glibc 2.26, cannot load, and a macOS venv would ship
macOS binaries), while the pure wheels run on any Lambda architecture and their hashes are
checked against the lock.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import os
import shutil
import subprocess
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

# A fixed timestamp and mode make the archive depend only on file paths and contents.
_EPOCH = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o644 << 16

# What the bundle imports beyond the standard library and the Lambda runtime.
VENDORED_ROOTS = ("requests",)
# Distributions the python3.11 Lambda runtime already provides (boto3 and its closure):
# never vendored, so the runtime's own, AWS-maintained versions are used.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six"})
LAMBDA_PYTHON = "3.11"
# Installer bookkeeping left out of the zip: RECORD lists console scripts whose shebangs embed
# the building machine's interpreter path (bytes would differ between machines); the scripts
# themselves (bin/) are useless in a Lambda.
_VENDOR_SKIPPED_TOP = frozenset({"bin", ".lock"})
_VENDOR_SKIPPED_METADATA = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})

DEFAULT_PACKAGE_PATH = Path("build/step-patterns-lambdas.zip")


class PackagingError(RuntimeError):
    """The deployable zip cannot be built (missing lock entry, no pure wheel, uv failure)."""


@dataclass(frozen=True)
class LockedWheel:
    """One vendored distribution as ``uv.lock`` pins it."""

    name: str
    version: str
    url: str
    sha256: str

    def requirement(self) -> str:
        return f"{self.name}=={self.version} --hash=sha256:{self.sha256}"


@dataclass(frozen=True)
class PackageInfo:
    path: Path
    size: int
    sha256_hex: str
    code_sha256: str  # base64, as Lambda reports CodeSha256
    vendored: tuple[LockedWheel, ...]


def bundle_source_dir() -> Path:
    """The directory of the ``step_lambdas`` package that goes into the zip."""
    spec = importlib.util.find_spec("step_lambdas")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the step_lambdas package is not importable; run `uv sync` first")
    return Path(next(iter(spec.submodule_search_locations)))


def default_lock_path() -> Path:
    """``uv.lock`` of the checkout the bundle sources come from (``lambdas/step_lambdas`` -> root)."""
    return bundle_source_dir().parent.parent / "uv.lock"


def build_bundle(source_dir: Path | None = None, vendor_dir: Path | None = None) -> bytes:
    """The bundle zip: ``step_lambdas/`` (no caches) at its root, plus the contents of
    ``vendor_dir`` (installed dependencies) when given."""
    source_dir = source_dir or bundle_source_dir()
    entries = {
        f"{source_dir.name}/{path.relative_to(source_dir).as_posix()}": path
        for path in _source_files(source_dir)
    }
    if vendor_dir is not None:
        for path in _vendored_files(vendor_dir):
            name = path.relative_to(vendor_dir).as_posix()
            if name.split("/", 1)[0] == source_dir.name:
                raise PackagingError(f"vendored file {name} would overwrite the bundle's own sources")
            entries[name] = path
    return _deterministic_zip(entries)


def bundle_sha256(data: bytes) -> str:
    """The zip's digest as Lambda reports it in ``CodeSha256`` (base64 of SHA-256)."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def locked_runtime_wheels(lock_path: Path, roots: tuple[str, ...] = VENDORED_ROOTS) -> list[LockedWheel]:
    """The pure-Python wheels of ``roots`` and their dependency closure, as ``uv.lock`` pins
    them, minus what the Lambda runtime provides. Sorted by name."""
    if not lock_path.is_file():
        raise PackagingError(f"{lock_path}: no such lock file (run from the project checkout, or pass --lock)")
    packages = {package["name"]: package for package in tomllib.loads(lock_path.read_text())["package"]}
    wanted: dict[str, LockedWheel] = {}
    pending = [_normalise(root) for root in roots]
    while pending:
        name = pending.pop()
        if name in wanted or name in RUNTIME_PROVIDED:
            continue
        package = packages.get(name)
        if package is None:
            raise PackagingError(f"{lock_path}: {name!r} is not locked; add it to pyproject.toml and run `uv lock`")
        wanted[name] = _pure_wheel(lock_path, package)
        pending.extend(_normalise(dep["name"]) for dep in package.get("dependencies", ()))
    return sorted(wanted.values(), key=lambda wheel: wheel.name)


def vendor_dependencies(wheels: list[LockedWheel], target: Path, uv: str | None = None) -> None:
    """Install exactly ``wheels`` into ``target`` (hash-checked, no dependency resolution)."""
    uv = uv or find_uv()
    target.mkdir(parents=True, exist_ok=True)
    requirements = target.parent / f"{target.name}-requirements.txt"
    requirements.write_text("".join(wheel.requirement() + "\n" for wheel in wheels))
    command = [
        uv, "pip", "install", "--quiet", "--target", str(target), "--no-deps", "--require-hashes",
        "--only-binary", ":all:", "--python-version", LAMBDA_PYTHON,
        "--python-platform", "x86_64-manylinux2014", "--no-compile", "-r", str(requirements),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PackagingError(f"`{' '.join(command)}` failed ({done.returncode}):\n{done.stderr.strip()}")


def build_package(output: Path = DEFAULT_PACKAGE_PATH, lock_path: Path | None = None, uv: str | None = None) -> PackageInfo:
    """Write the deployable zip (sources + vendored runtime dependencies) to ``output``."""
    wheels = locked_runtime_wheels(lock_path or default_lock_path())
    with tempfile.TemporaryDirectory(prefix="step-patterns-vendor-") as scratch:
        vendor_dir = Path(scratch) / "vendor"
        vendor_dependencies(wheels, vendor_dir, uv)
        data = build_bundle(vendor_dir=vendor_dir)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(data)
    return PackageInfo(
        path=output,
        size=len(data),
        sha256_hex=hashlib.sha256(data).hexdigest(),
        code_sha256=bundle_sha256(data),
        vendored=tuple(wheels),
    )


def find_uv() -> str:
    """The uv executable: ``$UV`` (the Makefile passes its pinned one), else ``uv`` on PATH."""
    uv = os.environ.get("UV") or shutil.which("uv")
    if not uv:
        raise PackagingError("uv not found: set UV=/path/to/uv or run through `make package`")
    return uv


def _source_files(source_dir: Path) -> list[Path]:
    return [
        path
        for path in source_dir.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    ]


def _vendored_files(vendor_dir: Path) -> list[Path]:
    files = []
    for path in vendor_dir.rglob("*"):
        parts = path.relative_to(vendor_dir).parts
        if not path.is_file() or parts[0] in _VENDOR_SKIPPED_TOP or "__pycache__" in parts or path.suffix == ".pyc":
            continue
        if parts[0].endswith(".dist-info") and len(parts) == 2 and parts[1] in _VENDOR_SKIPPED_METADATA:
            continue
        files.append(path)
    return files


def _deterministic_zip(entries: dict[str, Path]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, _EPOCH)
            info.external_attr = _FILE_MODE
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[name].read_bytes())
    return buffer.getvalue()


def _pure_wheel(lock_path: Path, package: dict) -> LockedWheel:
    for wheel in package.get("wheels", ()):
        filename = wheel["url"].rsplit("/", 1)[-1]
        if filename.endswith("-none-any.whl") and wheel["hash"].startswith("sha256:"):
            return LockedWheel(package["name"], package["version"], wheel["url"], wheel["hash"].removeprefix("sha256:"))
    raise PackagingError(
        f"{lock_path}: {package['name']} {package['version']} has no pure-Python wheel; a binary "
        "dependency would need wheels built for the Lambda runtime's platform"
    )


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")
