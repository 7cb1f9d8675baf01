"""The model package (JAX, Flax) is for the inference service and training only: a function
that lists artifacts or ingests files must not pay for importing it (DESIGN.md §7), and what
those functions share with the model code (PEFT's file names) agrees with it."""

from __future__ import annotations

import subprocess
import sys

from shared.domain.adapters import objects
from shared.neural import peft
from tests.helpers import REPO_ROOT

# Every function of the template except the inference service and the train function (the two
# that run the model), imported and exercised where the model used to creep in (ingest's
# chunker loading MiniLM's tokenizer).
PROBE = """
import importlib, pathlib, sys
for package in sorted(p.name for p in pathlib.Path('functions').iterdir()
                      if (p / 'main.py').exists() and p.name not in ('inference', 'train')):
    importlib.import_module(f'functions.{package}.main')
from shared.domain.rag.chunking import minilm_offsets
assert minilm_offsets()('Chunks are cut in MiniLM tokens.')
loaded = sorted(m for m in ('jax', 'flax', 'shared.neural') if m in sys.modules)
print(','.join(loaded) or 'none')
"""


def test_no_function_but_inference_imports_the_model_package() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "none", result.stdout


def test_the_adapter_store_and_the_model_package_name_the_same_files() -> None:
    assert (objects.CONFIG_FILE, objects.WEIGHTS_FILE) == (peft.CONFIG_FILE, peft.WEIGHTS_FILE)
