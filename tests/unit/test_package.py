"""The deployable Lambda zip (`make package`): reproducible, complete, nothing the runtime has."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from step_lambdas.manifest import FUNCTIONS
from step_patterns_sandbox.bundle import (
    RUNTIME_PROVIDED,
    PackagingError,
    build_package,
    bundle_source_dir,
    default_lock_path,
    locked_runtime_wheels,
)
from step_patterns_sandbox.commands import package as package_command


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return build_package(tmp_path_factory.mktemp("pkg") / "bundle.zip")


@pytest.fixture(scope="module")
def names(package) -> list[str]:
    with zipfile.ZipFile(package.path) as archive:
        return archive.namelist()


def test_two_builds_give_the_same_bytes(package, tmp_path):
    again = build_package(tmp_path / "again.zip")
    assert again.path.read_bytes() == package.path.read_bytes()
    assert again.sha256_hex == package.sha256_hex and again.size == package.size


def test_the_zip_holds_the_sources_and_requests_without_caches_or_the_runtime_s_sdk(names):
    tops = {name.split("/", 1)[0] for name in names}
    assert "step_lambdas/manifest.py" in names
    assert "requests/__init__.py" in names and "urllib3/__init__.py" in names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    assert not tops & {"boto3", "botocore", "s3transfer", "bin"}
    # licenses travel with the vendored code; installer bookkeeping does not
    assert "requests-2.34.2.dist-info/licenses/LICENSE" in names
    assert not [name for name in names if name.endswith(("/RECORD", "/INSTALLER"))]


def test_every_manifest_handler_module_is_in_the_zip(names):
    for key, spec in FUNCTIONS.items():
        module = spec.handler.rsplit(".", 1)[0]
        assert module.replace(".", "/") + ".py" in names, f"{key}: handler module {module} missing"


def test_vendored_versions_are_the_locked_ones(package):
    lock = {p["name"]: p["version"] for p in tomllib.loads(default_lock_path().read_text())["package"]}
    assert {w.name for w in package.vendored} == {"requests", "urllib3", "idna", "certifi", "charset-normalizer"}
    for wheel in package.vendored:
        assert wheel.version == lock[wheel.name]
        assert wheel.url.endswith("-none-any.whl")  # pure Python: any Lambda architecture


def test_every_third_party_import_of_the_bundle_is_vendored_or_provided_by_the_runtime(names):
    tops = {name.split("/", 1)[0] for name in names}
    imported = set()
    for path in bundle_source_dir().rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"step_lambdas", "__future__"}
    missing = {m for m in third_party if m not in tops and m not in RUNTIME_PROVIDED}
    assert not missing, f"imported by step_lambdas but neither vendored nor in the Lambda runtime: {missing}"


def test_requests_imports_from_the_zip_alone(package, tmp_path):
    """Without site-packages (-S), only the zip's copy can satisfy the import."""
    with zipfile.ZipFile(package.path) as archive:
        archive.extractall(tmp_path)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import requests, charset_normalizer; "
            "assert requests.__file__.startswith(sys.argv[1]), requests.__file__")
    done = subprocess.run([sys.executable, "-S", "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    handlers = "; ".join(f"import {spec.handler.rsplit('.', 1)[0]}" for spec in FUNCTIONS.values())
    code = (f"import sys; sys.path.insert(0, sys.argv[1]); {handlers}; import step_lambdas; "
            "assert step_lambdas.__file__.startswith(sys.argv[1]), step_lambdas.__file__")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_dependency_without_a_pure_wheel_is_refused_by_name(tmp_path):
    lock = tmp_path / "uv.lock"
    lock.write_text(
        'version = 1\n[[package]]\nname = "requests"\nversion = "1.0"\n'
        'dependencies = [{ name = "fastthing" }, { name = "botocore" }]\n'
        'wheels = [{ url = "https://x/requests-1.0-py3-none-any.whl", hash = "sha256:aa" }]\n'
        '[[package]]\nname = "fastthing"\nversion = "2.0"\n'
        'wheels = [{ url = "https://x/fastthing-2.0-cp311-cp311-manylinux_2_28_x86_64.whl", hash = "sha256:bb" }]\n'
    )
    with pytest.raises(PackagingError, match="fastthing 2.0 has no pure-Python wheel"):
        locked_runtime_wheels(lock)


def test_a_dependency_missing_from_the_lock_is_refused_by_name(tmp_path):
    lock = tmp_path / "uv.lock"
    lock.write_text('version = 1\n[[package]]\nname = "other"\nversion = "1.0"\n')
    with pytest.raises(PackagingError, match="'requests' is not locked"):
        locked_runtime_wheels(lock)


def test_the_command_reports_size_and_digest(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    package_command.register(parser.add_subparsers())
    args = parser.parse_args(["package", "--output", str(tmp_path / "out.zip")])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    size = (tmp_path / "out.zip").stat().st_size
    assert f"({size:,} bytes" in out and "sha256 " in out and "requests 2.34.2" in out


def test_the_command_says_what_is_wrong_with_a_missing_lock(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    package_command.register(parser.add_subparsers())
    args = parser.parse_args(["package", "--output", str(tmp_path / "out.zip"), "--lock", str(tmp_path / "nope.lock")])
    assert args.func(args) == 1
    assert "nope.lock: no such lock file" in capsys.readouterr().err
    assert not (tmp_path / "out.zip").exists()
