"""Builds the Lambda artifacts `sam build` deploys (docs/packaging.md): called by the makefile
builder (infra/aws/build/Makefile, BuildMethod: makefile) with the resource's logical id and
the ARTIFACTS_DIR SAM gives it.

- A zip function gets only what its module imports and reads: run.sh, template.yaml (queue and
  bucket names), functions/__init__.py, functions/<its package>/ and shared/ without the model
  package (shared.neural: only the inference service and the train function, both images, run
  the model), plus the paths its Metadata.BuildProperties.Include names (say `sql` for a
  function that runs migrations). Never .data/, weights, tests or a virtual environment.
- The dependencies layer: the project's base dependencies from the Lambda lock
  (infra/aws/layers/requirements.lock, hashed, made by `make lock`) as manylinux wheels for
  the python3.11 runtime (Amazon Linux 2: glibc 2.26), without the clustering stack
  (scikit-learn and SciPy: the cluster function is an image, as they do not fit next to the
  rest under Lambda's 250 MB), installed --no-deps: nothing is resolved at build time.

    python -m infra.aws.package <LogicalId> <ARTIFACTS_DIR>
"""

from __future__ import annotations

import argparse
import compileall
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from shared.platform.template import load_raw

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "template.yaml"
LAYER_LOCK = REPO_ROOT / "infra" / "aws" / "layers" / "requirements.lock"
LAYER_ID = "DependenciesLayer"

# Only the cluster function (an image) imports these: kept out of the shared layer.
CLUSTER_ONLY = frozenset(
    {"scikit-learn", "scipy", "joblib", "threadpoolctl", "narwhals", "cloudpickle"}
)
# The python3.11 runtime runs on Amazon Linux 2 (glibc 2.26): wheels up to manylinux_2_26.
PLATFORMS = ("manylinux_2_26_x86_64", "manylinux2014_x86_64")
# What never goes into a function, wherever it sits in the copied trees.
EXCLUDED = shutil.ignore_patterns("__pycache__", "*.pyc", "Dockerfile", "tests", ".*")
MODEL_PACKAGE = "shared/neural"


def resources(template: Path = TEMPLATE) -> dict[str, Any]:
    return dict(load_raw(template)["Resources"])


def zip_functions(template: Path = TEMPLATE) -> dict[str, dict[str, Any]]:
    """The zip functions (AWS::Serverless::Function without PackageType Image), by logical id."""
    return {
        logical_id: resource
        for logical_id, resource in resources(template).items()
        if resource["Type"] == "AWS::Serverless::Function"
        and (resource.get("Properties") or {}).get("PackageType", "Zip") == "Zip"
    }


def _imports(package_dir: Path, pattern: re.Pattern[str]) -> set[str]:
    return {
        match.group(2)
        for path in package_dir.rglob("*.py")
        for match in pattern.finditer(path.read_text())
    }


_FUNCTION_IMPORT = re.compile(r"^\s*(from|import)\s+functions\.([a-z_0-9]+)", re.MULTILINE)
_MODEL_IMPORT = re.compile(r"^\s*(from|import)\s+(shared\.neural)\b", re.MULTILINE)


def function_packages(package: str) -> list[str]:
    """The function's package and every other function package its code imports (say the
    admin function, which answers with the auth function's schemas), transitively."""
    found, pending = set(), [package.split(".")[1]]
    while pending:
        name = pending.pop()
        if name not in found:
            found.add(name)
            pending.extend(_imports(REPO_ROOT / "functions" / name, _FUNCTION_IMPORT))
    return [f"functions/{name}" for name in sorted(found)]


def imports_model(package_dirs: list[str]) -> bool:
    return any(_imports(REPO_ROOT / directory, _MODEL_IMPORT) for directory in package_dirs)


def function_paths(logical_id: str, resource: dict[str, Any]) -> list[str]:
    """The repository paths (files or folders) that make up one zip function."""
    metadata = resource.get("Metadata") or {}
    package = metadata.get("Package")
    if not package:
        raise SystemExit(f"{logical_id}: Metadata.Package names the function's package")
    package_dir = package.replace(".", "/")
    if not (REPO_ROOT / package_dir / "main.py").is_file():
        raise SystemExit(f"{logical_id}: {package_dir}/main.py does not exist")
    paths = ["run.sh", "template.yaml", "functions/__init__.py", *function_packages(package)]
    paths.append("shared")
    includes = (metadata.get("BuildProperties") or {}).get("Include") or []
    return paths + [str(path) for path in includes]


def build_function(logical_id: str, resource: dict[str, Any], out: Path) -> None:
    with_model = imports_model(function_packages(str(resource["Metadata"]["Package"])))
    for relative in function_paths(logical_id, resource):
        source, target = REPO_ROOT / relative, out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=EXCLUDED, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)
    if not with_model:
        shutil.rmtree(out / MODEL_PACKAGE, ignore_errors=True)
    _compile(out)


def _compile(root: Path, *, strict: bool = True) -> None:
    """Lambda's code is read-only: without bytecode shipped, every cold start compiles each
    module it imports. unchecked-hash: valid whatever mtimes the zip keeps."""
    ok = compileall.compile_dir(
        root,
        quiet=2,
        workers=0,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    if strict and not ok:
        raise SystemExit(f"could not compile everything under {root}")


def layer_requirements(lock: Path = LAYER_LOCK) -> str:
    """The Lambda lock without the cluster-only packages (each entry: a name==version line,
    its hashes and its `# via` comments)."""
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock.read_text())
    kept = [
        entry
        for entry in entries
        if not entry.startswith("#") and entry.split("==", 1)[0].strip() not in CLUSTER_ONLY
    ]
    return "\n".join(kept) + "\n"


def build_layer(out: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        requirements = Path(scratch) / "requirements.txt"
        requirements.write_text(layer_requirements())
        platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--no-deps", "--require-hashes", "--only-binary=:all:", *platforms,
             "--python-version", "3.11", "--implementation", "cp", "--no-compile",
             "--target", str(out / "python"), "-r", str(requirements)],
            check=True,
        )  # fmt: skip
    # The libraries' own test suites (numpy's are ~9 MB) are never imported: room for the
    # bytecode, which saves about a second of every cold start (the layer is read-only too).
    for tests in sorted((out / "python").rglob("tests"), reverse=True):
        if tests.is_dir():
            shutil.rmtree(tests)
    _compile(out / "python", strict=False)  # a library's odd file may not compile


def as_packaged(raw: dict[str, Any], bucket: str = "deploy-bucket") -> dict[str, Any]:
    """What `sam package` does to a template (its code locations become S3 URIs), for the
    SAM translator in tests: a parsed template (shared.platform.template.load_raw), changed in
    place and returned."""
    function_globals = raw.get("Globals", {}).get("Function", {})
    if "CodeUri" in function_globals:
        function_globals["CodeUri"] = f"s3://{bucket}/code.zip"
    for logical_id, resource in raw.get("Resources", {}).items():
        props = resource.get("Properties") or {}
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = f"s3://{bucket}/{logical_id}.zip"
        elif resource["Type"] == "AWS::Serverless::Function" and "CodeUri" in props:
            props["CodeUri"] = f"s3://{bucket}/{logical_id}.zip"
        elif resource["Type"] == "AWS::Serverless::Application" and isinstance(
            props.get("Location"), str
        ):  # a nested stack's local template, uploaded
            props["Location"] = f"https://{bucket}.s3.amazonaws.com/{logical_id}.template"
    return raw


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("logical_id")
    parser.add_argument("artifacts_dir", type=Path)
    args = parser.parse_args(argv)
    args.artifacts_dir.mkdir(parents=True, exist_ok=True)
    if args.logical_id == LAYER_ID:
        build_layer(args.artifacts_dir)
        return
    functions = zip_functions()
    if args.logical_id not in functions:
        raise SystemExit(f"{args.logical_id} is not a zip function of {TEMPLATE.name}")
    build_function(args.logical_id, functions[args.logical_id], args.artifacts_dir)


if __name__ == "__main__":
    main()
