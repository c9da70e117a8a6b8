"""How the stack's code assets are made without Docker: with uv, on the machine that synthesizes.

- The Lambda asset: this package (its wheel, `uv build --wheel`) plus its locked dependencies,
  installed by `uv pip install --target` for CPython 3.12 on x86_64 manylinux (the Lambda runtime),
  leaving out the large ones no handler imports (pyarrow, duckdb, numpy: the transform is Glue's).
  botocore is bundled on purpose: the raw zone's conditional puts (If-None-Match) need a newer one
  than the Lambda runtime may carry.
- The Glue artifacts: the job script, glue_job.py, and a wheelhouse: this package's wheel and
  every locked dependency (`uv export --frozen --no-dev`) as wheels for Glue 5.0's platform
  (CPython 3.11 on Amazon Linux 2023, glibc 2.34, x86_64), zipped into one "zip of wheels" with
  the requirements.txt that pins them. The job installs from it with pip's --no-index (job
  arguments in amzlake.aws.infra.transform), so a job start never reaches PyPI and an upstream
  release never changes production. pyspark and py4j stay Glue's own.

Both are CDK local bundlings (ILocalBundling): CDK calls `try_bundle` at synth time; a test synth
skips bundling (context aws:cdk:bundling-stacks = []) and never runs uv.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import ILocalBundling

# Too big for a Lambda's 250 MB and not imported by any handler (tests/infra checks the imports).
LAMBDA_EXCLUDED = frozenset({"pyarrow", "duckdb", "numpy", "pyspark", "py4j"})
LAMBDA_PYTHON = "3.12"
# Lambda's python3.12 runs on Amazon Linux 2023 (glibc 2.34): manylinux_2_28 wheels run there, and
# some locked dependencies (pyroaring) ship no manylinux2014 wheel.
LAMBDA_PLATFORM = "x86_64-manylinux_2_28"

# Glue 5.0 runs Python 3.11 on Amazon Linux 2023 (glibc 2.34): AWS Glue developer guide, "Using
# Python libraries with AWS Glue", the table of Glue versions, Python versions and base images.
GLUE_PYTHON = "3.11"
GLUE_PLATFORMS = ("manylinux_2_34_x86_64", "manylinux_2_28_x86_64", "manylinux_2_17_x86_64",
                  "manylinux2014_x86_64")
# Glue's own Spark: never replaced by the wheelhouse (nor in the lock's default export).
GLUE_PROVIDED = frozenset({"pyspark", "py4j"})
GLUE_WHEELS_ZIP = "amzlake-glue-wheels.zip"
GLUE_REQUIREMENTS = "requirements.txt"
# pip runs from PyPI at this version (the project's venv has none; uv has no `pip download`).
PIP = "pip==26.3"

# What a source-hash of the project looks at (the wheel and the lock decide the asset's bytes).
_HASHED_SUFFIXES = (".py", ".json", ".toml", ".yaml", ".sql", ".txt", ".typed")
_REQ_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")

# Asset staging copies the project minus these when bundling is skipped (test synths).
ASSET_EXCLUDES = [
    ".venv",
    ".git",
    ".uvw",
    "cdk.out",
    "tests",
    "benchmarks",
    "**/__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".ruff_cache",
    "dist",
    "amzlake-demo",
    "lake",
    "node_modules",
    "*.egg-info",
]


def project_root() -> Path:
    """The checkout holding pyproject.toml (assets are built from it)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "src" / "amzlake").is_dir():
            return parent
    raise FileNotFoundError("amzlake's pyproject.toml not found above " + str(here))


def project_version(root: Path) -> str:
    """The package version pyproject.toml declares."""
    return str(tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"])


def wheel_name(root: Path) -> str:
    """The file name `uv build --wheel` gives this pure-Python package."""
    return f"amzlake-{project_version(root)}-py3-none-any.whl"


def source_hash(root: Path, salt: str = "") -> str:
    """A SHA-256 over the package sources, pyproject.toml and uv.lock (the asset hash)."""
    digest = hashlib.sha256(salt.encode())
    files = [root / "pyproject.toml", root / "uv.lock"]
    files += sorted(
        p
        for p in (root / "src" / "amzlake").rglob("*")
        if p.is_file() and p.suffix in _HASHED_SUFFIXES and "__pycache__" not in p.parts
    )
    for path in files:
        if path.is_file():
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def filter_requirements(lines: Iterable[str], excluded: Iterable[str]) -> list[str]:
    """Requirement lines of `uv export` without comments, blanks and the `excluded` names."""
    skip = {_normal(n) for n in excluded}
    out = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith(("#", "-")):
            continue
        m = _REQ_NAME.match(line)
        if m and _normal(m.group(1)) not in skip:
            out.append(line)
    return out


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def uv_command(root: Path) -> list[str]:
    """How to run uv here: $UV, a uv on PATH, else the project's ./uvw wrapper."""
    if os.environ.get("UV"):
        return [os.environ["UV"]]
    found = shutil.which("uv")
    if found:
        return [found]
    return [str(root / "uvw")]


def _run(cmd: Sequence[str], cwd: Path) -> str:
    done = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"bundling: {' '.join(cmd[:3])} ... failed ({done.returncode}): "
            f"{done.stderr.strip()[-2000:]}"
        )
    return done.stdout


def build_wheel(root: Path, out_dir: Path) -> Path:
    """The package's wheel, built into `out_dir` by `uv build --wheel`."""
    _run([*uv_command(root), "build", "--wheel", "--out-dir", str(out_dir)], root)
    wheel = out_dir / wheel_name(root)
    if not wheel.is_file():
        raise RuntimeError(f"bundling: uv build made no {wheel.name} in {out_dir}")
    return wheel


def bundle_lambda(root: Path, output_dir: Path) -> None:
    """Fill `output_dir` with the package and its locked dependencies for the Lambda runtime."""
    uv = uv_command(root)
    with tempfile.TemporaryDirectory(prefix="amzlake-bundle-") as tmp:
        wheel = build_wheel(root, Path(tmp))
        exported = _run(
            [
                *uv,
                "export",
                "--frozen",
                "--no-hashes",
                "--no-dev",
                "--no-emit-project",
                "--extra",
                "aws",
            ],
            root,
        )
        reqs = Path(tmp) / "requirements.txt"
        reqs.write_text(
            "\n".join(filter_requirements(exported.splitlines(), LAMBDA_EXCLUDED)) + "\n"
        )
        target = [
            "--target",
            str(output_dir),
            "--python-version",
            LAMBDA_PYTHON,
            "--python-platform",
            LAMBDA_PLATFORM,
            "--only-binary",
            ":all:",
        ]
        _run([*uv, "pip", "install", "--no-deps", *target, "-r", str(reqs)], root)
        _run([*uv, "pip", "install", "--no-deps", *target, str(wheel)], root)


def glue_requirements(root: Path) -> list[str]:
    """The Glue job's pinned requirements: the lock's runtime dependencies (with boto3: the raw
    zone's conditional puts need a newer botocore than Glue's), less Glue's own Spark, plus
    this package at its version."""
    exported = _run(
        [*uv_command(root), "export", "--frozen", "--no-hashes", "--no-dev",
         "--no-emit-project", "--extra", "aws"],
        root,
    )
    return [*filter_requirements(exported.splitlines(), GLUE_PROVIDED),
            f"amzlake=={project_version(root)}"]


def build_wheelhouse(root: Path, out_dir: Path) -> list[Path]:
    """Every wheel the Glue job installs, for Glue 5.0's platform, in `out_dir`, with the
    requirements.txt pinning them; returns the wheels. Downloads from PyPI (once per machine:
    pip keeps its own cache)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    requirements = glue_requirements(root)
    (out_dir / GLUE_REQUIREMENTS).write_text("\n".join(requirements) + "\n")
    deps = out_dir / "dependencies.txt"
    deps.write_text("\n".join(requirements[:-1]) + "\n")
    platforms = [arg for p in GLUE_PLATFORMS for arg in ("--platform", p)]
    _run([*uv_command(root), "tool", "run", "--from", PIP, "pip", "download",
          "--disable-pip-version-check", "--no-deps", "--only-binary", ":all:",
          "--python-version", GLUE_PYTHON, "--implementation", "cp",
          "--abi", f"cp{GLUE_PYTHON.replace('.', '')}", "--abi", "abi3", "--abi", "none",
          *platforms, "--dest", str(out_dir), "-r", str(deps)], root)
    deps.unlink()
    with tempfile.TemporaryDirectory(prefix="amzlake-wheel-") as tmp:
        wheel = build_wheel(root, Path(tmp))
        shutil.copyfile(wheel, out_dir / wheel.name)
    return sorted(out_dir.glob("*.whl"))


def bundle_glue(root: Path, output_dir: Path) -> None:
    """Fill `output_dir` with the Glue job's script and its zip of wheels (see the docstring
    above), whose requirements.txt the job installs from with no index."""
    with tempfile.TemporaryDirectory(prefix="amzlake-wheelhouse-") as tmp:
        house = Path(tmp)
        wheels = build_wheelhouse(root, house)
        with zipfile.ZipFile(output_dir / GLUE_WHEELS_ZIP, "w", zipfile.ZIP_STORED) as z:
            for path in [*wheels, house / GLUE_REQUIREMENTS]:
                z.write(path, path.name)  # wheels are zips already: stored, not deflated
    shutil.copyfile(root / "src" / "amzlake" / "aws" / "glue_job.py", output_dir / "glue_job.py")


@jsii.implements(ILocalBundling)
class UvBundling:
    """CDK local bundling that calls one of this module's bundle functions."""

    def __init__(self, root: Path, kind: str) -> None:
        if kind not in ("lambda", "glue"):
            raise ValueError(f"unknown bundle kind {kind!r}")
        self.root = root
        self.kind = kind

    def try_bundle(self, output_dir: str, options: Any = None) -> bool:
        """True once the asset is in `output_dir` (errors propagate: no Docker fallback).

        jsii passes CDK's BundlingOptions as one positional struct; uv needs none of them."""
        fill = bundle_lambda if self.kind == "lambda" else bundle_glue
        fill(self.root, Path(output_dir))
        return True
