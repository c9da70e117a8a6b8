"""The Glue job's dependencies come pinned from uv.lock in a zip of wheels built at synth time:
installed into a clean Python 3.11 venv with pip and no index, as the job's --no-index install on
Glue does, they are exactly the locked versions, leave Glue's own Spark alone, and the job's
module imports.

Building the wheelhouse downloads the wheels from PyPI (pip caches them per machine); it is built
once per session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from amzlake.aws.bundling import (
    GLUE_PROVIDED,
    GLUE_REQUIREMENTS,
    GLUE_WHEELS_ZIP,
    UvBundling,
    project_root,
    uv_command,
)

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="session")
def glue_asset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The Glue asset as `cdk synth --bundle` makes it (script and zip of wheels), once."""
    out = tmp_path_factory.mktemp("glue-asset")
    # jsii hands try_bundle CDK's options as a second positional argument.
    assert UvBundling(project_root(), "glue").try_bundle(str(out), None) is True
    yield out


def _python_311() -> str:
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    return "3.11"  # uv finds an installed 3.11


def _locked_versions() -> dict[str, str]:
    """name -> version of every package the lock exports for the job on Glue's Python 3.11
    (linux), none of Glue's own."""
    from packaging.markers import Marker

    glue = {"python_version": "3.11", "python_full_version": "3.11.0", "sys_platform": "linux",
            "platform_system": "Linux", "platform_machine": "x86_64",
            "implementation_name": "cpython", "platform_python_implementation": "CPython"}
    done = subprocess.run([*uv_command(project_root()), "export", "--frozen", "--no-hashes",
                           "--no-dev", "--no-emit-project", "--extra", "aws"],
                          capture_output=True, text=True, check=True, cwd=project_root())
    out = {}
    for line in done.stdout.splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            requirement, _, marker = line.partition(";")
            if marker.strip() and not Marker(marker.strip()).evaluate(glue):
                continue
            name, _, version = requirement.partition("==")
            out[name.strip().lower().replace("_", "-")] = version.strip()
    return out


def test_the_asset_is_the_script_and_one_zip_of_wheels(glue_asset: Path) -> None:
    assert sorted(p.name for p in glue_asset.iterdir()) == sorted(["glue_job.py",
                                                                   GLUE_WHEELS_ZIP])
    names = zipfile.ZipFile(glue_asset / GLUE_WHEELS_ZIP).namelist()
    assert GLUE_REQUIREMENTS in names
    wheels = [n for n in names if n.endswith(".whl")]
    assert len(wheels) == len(names) - 1
    # Glue's own Spark is never replaced; everything else is for CPython 3.11 or pure Python.
    assert not [w for w in wheels if w.split("-")[0].lower() in GLUE_PROVIDED]
    assert all(("-cp311-" in w and "x86_64" in w) or w.endswith("-none-any.whl")
               for w in wheels), wheels


def test_job_requirements_install_offline_into_a_clean_311_venv_and_the_job_imports(
        glue_asset: Path, tmp_path: Path) -> None:
    house = tmp_path / "wheelhouse"
    zipfile.ZipFile(glue_asset / GLUE_WHEELS_ZIP).extractall(house)
    venv = tmp_path / "venv"
    uv = uv_command(project_root())
    subprocess.run([*uv, "venv", "--seed", "--python", _python_311(), str(venv)], check=True,
                   capture_output=True, text=True)
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    install = subprocess.run([python, "-m", "pip", "install", "--disable-pip-version-check",
                              "--no-index", "--find-links", str(house),
                              "-r", str(house / GLUE_REQUIREMENTS)],
                             capture_output=True, text=True, check=False, env=env)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    probe = ("import json, importlib.metadata as m, sys, amzlake.aws.glue_job\n"
             "print(json.dumps({'python': list(sys.version_info[:2]), 'dists': {"
             "d.metadata['Name'].lower().replace('_', '-'): d.version for d in m.distributions()}}))")
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False,
                          env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["python"] == [3, 11]
    installed = seen["dists"]
    locked = _locked_versions()
    assert {n: installed.get(n) for n in locked} == locked
    assert installed["amzlake"] == "0.1.0"
    assert not set(installed) & GLUE_PROVIDED
