"""The tokenizer and chat template come from the GGUF and agree with transformers' own GGUF tokenizer."""

from inference.core.tokenizer import IncrementalDecoder

TEXTS = ["Hello world", "  leading spaces, tabs\tand\nnewlines", "Ünïcödé — 東京 🦊 emoji", "<|im_start|>user"]


def test_raw_text_encodes_like_transformers_without_special_tokens(engine, reference_tokenizer):
    for text in TEXTS:
        assert engine.tokenizer.encode(text) == reference_tokenizer.encode(text, add_special_tokens=False)


def test_decoding_gives_back_the_text(engine):
    for text in TEXTS:
        assert engine.tokenizer.decode(engine.tokenizer.encode(text)) == text


def test_chat_template_renders_like_transformers_with_the_generation_prompt(engine, reference_tokenizer):
    messages = [{"role": "user", "content": "What is the tallest mountain?"}]
    expected = reference_tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = engine.tokenizer.encode_chat(messages)
    assert ids == reference_tokenizer.encode(expected, add_special_tokens=False)
    assert engine.tokenizer.decode(ids).endswith("<|im_start|>assistant\n")


def test_end_of_turn_token_is_a_stop_token(engine):
    assert engine.tokenizer.encode("<|im_end|>") == [2]
    assert 2 in engine.tokenizer.stop_token_ids


def test_incremental_decoding_holds_back_split_characters_and_adds_up_to_the_full_text(engine):
    text = "Fox 🦊 and 東京, then done."
    ids = engine.tokenizer.encode(text)
    decoder = IncrementalDecoder(engine.tokenizer)
    deltas = [decoder.push(token) for token in ids] + [decoder.flush()]
    assert "".join(deltas) == text
    assert all("\ufffd" not in delta for delta in deltas)
    assert len(ids) > len(text.split())  # the emoji and kanji span several byte-level tokens
