"""Tokenizer and chat template read from the GGUF itself.

transformers' GGUF tokenizer converter builds the `tokenizers` backend from the file's vocabulary
and merges. We feed it metadata we already parsed instead of calling
AutoTokenizer.from_pretrained(gguf_file=...), whose GGUF reader imports torch: that alone would
add ~250 MB to an engine process that never needs torch.
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerFast
from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_TOKENIZER_MAPPING, convert_gguf_tokenizer

from inference.core.gguf_loader import GGUFError, GGUFModel

# Token ids that end a generation when the model emits them, by GGUF metadata key.
STOP_TOKEN_KEYS = ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id")
SPECIAL_TOKEN_KEYS = {
    "bos_token": "tokenizer.ggml.bos_token_id",
    "eos_token": "tokenizer.ggml.eos_token_id",
    "unk_token": "tokenizer.ggml.unknown_token_id",
    "pad_token": "tokenizer.ggml.padding_token_id",
}


class Tokenizer:
    def __init__(self, model: GGUFModel):
        metadata = model.metadata
        if "tokenizer.ggml.tokens" not in metadata:
            raise GGUFError(f"{model.path}: GGUF has no tokenizer (tokenizer.ggml.tokens missing)")
        tokenizer_fields = {
            name: metadata[f"tokenizer.{key}"]
            for key, name in GGUF_TOKENIZER_MAPPING["tokenizer"].items()
            if f"tokenizer.{key}" in metadata
        }
        backend, _ = convert_gguf_tokenizer(model.config.architecture, tokenizer_fields)
        tokens = metadata["tokenizer.ggml.tokens"]
        special_tokens = {name: tokens[metadata[key]] for name, key in SPECIAL_TOKEN_KEYS.items() if key in metadata}
        self._tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=backend, chat_template=metadata.get("tokenizer.chat_template"), **special_tokens
        )
        self.stop_token_ids = frozenset(int(metadata[key]) for key in STOP_TOKEN_KEYS if key in metadata)

    def encode(self, text: str) -> list[int]:
        """Raw text to ids, adding no BOS or other special tokens."""
        return self._tokenizer.encode(text, add_special_tokens=False)

    def decode(self, token_ids: list[int]) -> str:
        return self._tokenizer.decode(token_ids, skip_special_tokens=False)

    def encode_chat(self, messages: list[dict]) -> list[int]:
        """Messages rendered with the model's chat template, ending with the assistant's turn prompt."""
        if self._tokenizer.chat_template is None:
            raise ValueError("this GGUF has no chat template (tokenizer.chat_template)")
        text = self._tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        # The template writes any BOS it wants itself, so nothing is added on encoding.
        return self.encode(text)


class IncrementalDecoder:
    """Turns a growing list of token ids into text deltas without re-decoding everything.

    A token may end in the middle of a UTF-8 character; its text then ends in U+FFFD and is held
    back until the following tokens complete it. Decoding a short window before the new tokens
    keeps tokenizers' context-dependent spacing right.
    """

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        self.token_ids: list[int] = []
        self.window_start = 0  # first id of the window decoded for context
        self.emitted_until = 0  # ids before this index have had their text emitted

    def push(self, token_id: int) -> str:
        self.token_ids.append(token_id)
        before = self.tokenizer.decode(self.token_ids[self.window_start : self.emitted_until])
        text = self.tokenizer.decode(self.token_ids[self.window_start :])
        if text.endswith("\ufffd"):
            return ""
        self.window_start, self.emitted_until = self.emitted_until, len(self.token_ids)
        return text[len(before) :]

    def flush(self) -> str:
        """Whatever is still held back, once no more tokens will come."""
        before = self.tokenizer.decode(self.token_ids[self.window_start : self.emitted_until])
        text = self.tokenizer.decode(self.token_ids[self.window_start :])
        self.window_start = self.emitted_until = len(self.token_ids)
        return text[len(before) :]
