"""Fixtures for the model tests: the real converted SmolLM2, loaded once per session."""

from __future__ import annotations

import httpx
import pytest

from shared.lm.convert import ensure_weights
from shared.lm.model import build_model, forward_fn
from shared.lm.tokenizer import ChatTokenizer
from shared.lm.weights import TOKENIZER_FILE, load_checkpoint
from tests.helpers import free_port, project_process, wait_for

TOKEN = "test-inference-token"
SLOTS, QUEUE = 2, 2


@pytest.fixture(scope="session")
def lm(settings):
    directory = ensure_weights(settings.weights_dir)
    checkpoint = load_checkpoint(directory)
    state, step = forward_fn(build_model(checkpoint.config, checkpoint.tensors))
    tokenizer = ChatTokenizer.from_file(directory / TOKENIZER_FILE)
    return checkpoint.config, state, step, tokenizer


# The inference service: one process for the whole session, shared by every test that needs it.
def start_inference(tmp_path_factory, name: str):
    port = free_port()
    env = {
        "INFERENCE_PORT": str(port),
        "INFERENCE_TOKEN": TOKEN,
        "INFERENCE_SLOTS": str(SLOTS),
        "INFERENCE_QUEUE_SIZE": str(QUEUE),
        "INFERENCE_MAX_SEQ_LEN": "512",
        "LOG_LEVEL": "INFO",
    }
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp(name) / "inference.log"
    return url, project_process(
        ["-m", "functions.inference"], env=env, ready_url=url + "/healthz", log_path=log
    )


def wait_inference_ready(url: str) -> None:
    wait_for(
        lambda: httpx.get(url + "/healthz", timeout=2).status_code == 200,
        timeout_s=300,
        interval_s=0.5,
        what="inference ready",
    )


@pytest.fixture(scope="session")
def service(tmp_path_factory):
    url, process = start_inference(tmp_path_factory, "inference")
    with process:
        wait_inference_ready(url)
        yield url
