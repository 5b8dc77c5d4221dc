"""Grounded answers: retrieve passages, prompt the model with numbered sources, stream its answer a sentence at
a time once each is checked (said once, its citations naming passages that were given), and resolve each [n] to
the second of the video whose words support it best. What is streamed is what is stored and returned: the
dashboard, `ask` and /v1, streamed or not, all read the answer by iterating a GroundedAnswer.

A question without relevant passages is "not covered" by retrieval's decision, and so is one naming a thing no
passage names (names_no_passage_says). One with them is answered from
them, and refused when what the model says is not in them: it is told to refuse when the excerpts do not say the
answer, and a sentence stating a fact (number, time, day, month, name) the sources do not say is dropped.
"""
import dataclasses
import difflib
import functools
import math
import re
import time
import unicodedata
from urllib.parse import urlsplit

import numpy as np
from django.utils import translation
from text_to_num import alpha2digit

from ingest import retrieval
from assistant.generation import DEFAULT_MAX_TOKENS, answering_model
from ingest.embedding import active_embedding_model, embed_texts, query_vector
from ingest.models import Video
from ingest.segment_vectors import passage_segment_vectors
from inference.core.sampling import SamplingParams
from inference.models import ModelMark
from inference.selectors import serving_model

GROUNDED_MODEL = "kotatsu"
NOT_COVERED = "The knowledge base does not cover this: no ingested video talks about it."
SYSTEM_PROMPT = (
    "You answer an employee's question using only the numbered video transcript excerpts below. "
    "Answer in one or two full sentences that repeat what the question asks about and state the fact, "
    "never a bare number or name. "
    "Copy names, numbers, days and times exactly as the excerpt says them, and add nothing it does not say. "
    "End each sentence with the number of the excerpt it comes from, like [1]. "
    f"If the excerpts do not say the answer, reply only: {NOT_COVERED.split(':')[0]}."
)
# Prefill dominates time to first token on a CPU, so sources get a fixed share, whatever the window.
SOURCE_TOKENS = 600
HISTORY_TOKENS = 400
# Decoding of grounded answers (measured on the evaluation set, bench/RESULTS.md): a frequency penalty over
# the generated tokens only, since copying the excerpts' words is the point, and a stop when the model starts
# generating again a run of tokens it already generated.
FREQUENCY_PENALTY = 0.3
STOP_REPEATED_NGRAM = 8
# Added to the logits of every token of the excerpts when they are in the question's language, so that a small
# model copies "Tuesday" from them rather than inventing a date (SmolLM2 on a quick set of 14 fact questions:
# 10 facts stated without it, 11 with 1.5, 12 with 3.0, which also made it ramble on in copied sentences).
COPY_BIAS = 1.5
# How much more a word stating a checkable fact (a number, a weekday, a month, a name) counts than another one
# when a citation's segment is chosen by the words it shares with the citing sentence (Evidence.support).
FACT_WEIGHT = 2.0
# A citation's link opens this many seconds before the cited sentence, so the listener hears it from its start.
LEAD_IN_S = 3
CITATION = re.compile(r"\s*\[(\d+)\]")
SENTENCE_ENDS = ".!?。！？"
# After . ! ? and a space (not inside "2.5"), or after Japanese and Chinese full stops, which need none.
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])\s*")
# Where a sentence's clauses meet: a comma or semicolon before a space ("2,000" is a number), Japanese and Chinese
# commas, a dash between spaces. An unsupported fact in a later clause cuts the sentence there (AnswerCheck).
CLAUSE_BOUNDARY = re.compile(r"[,;](?=\s)|[、，；]|\s[—–-]\s")
CLAUSE_MARKS = " ,;、，；—–-"
YOUTUBE_HOSTS = {"youtube.com", "www.youtube.com", "m.youtube.com", "youtu.be", "music.youtube.com"}

# The language of a question, told by its script; text in Latin letters is taken for English (see answer_language).
KANA = re.compile("[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
HANGUL = re.compile("[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")
HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
LANGUAGE_NAMES = {"ja": "Japanese (日本語)", "zh": "Chinese (中文)", "ko": "Korean (한국어)"}
# Models that answer in English only, whatever they are asked in (SmolLM2 was trained on English text);
# any other LLM is told to answer in the question's language.
ENGLISH_ONLY_MODELS = {"smollm2-135m-instruct"}
NOT_COVERED_IN = {
    "en": NOT_COVERED,
    "ja": "ナレッジベースにはこの内容がありません: 取り込まれた動画のどれもこの話題を扱っていません。",
    "zh": "知识库中没有这方面的内容: 已收录的视频都没有谈到它。",
    "ko": "지식 베이스에 이 내용이 없습니다: 수집된 동영상 중 이 주제를 다루는 것이 없습니다.",
}
# What the model is told to reply when the excerpts do not say the answer: the notice's first clause.
SHORT_REFUSAL = {language: notice.split(":")[0] + ("." if language == "en" else "。")
                 for language, notice in NOT_COVERED_IN.items()}
ENGLISH_ONLY_NOTICE = {
    "ja": (
        "回答に使われているモデル ({model}) は英語でしか答えられないため、日本語の質問には答えられません。"
        "英語で質問するか、日本語で答えられるモデル (例: qwen2.5-coder-1.5b-instruct) を管理者に選んでもらってください。"
        "関連する箇所は下の出典から再生できます。"
    ),
    "zh": (
        "回答所用的模型 ({model}) 只能用英语回答, 因此无法回答中文问题。"
        "请用英语提问, 或请管理员选择能用中文回答的模型 (例如 qwen2.5-coder-1.5b-instruct)。"
        "相关片段可在下方的来源中播放。"
    ),
    "ko": (
        "답변에 사용되는 모델 ({model})은 영어로만 답할 수 있어 한국어 질문에는 답할 수 없습니다. "
        "영어로 질문하거나, 한국어로 답할 수 있는 모델 (예: qwen2.5-coder-1.5b-instruct)을 관리자에게 요청하세요. "
        "관련 부분은 아래 출처에서 재생할 수 있습니다."
    ),
}


def question_language(text):
    """"ja", "ko", "zh" or "en" by the script alone: kana make Japanese, Hangul Korean, Han characters alone
    Chinese (answer_language settles those for a question)."""
    if KANA.search(text):
        return "ja"
    if HANGUL.search(text):
        return "ko"
    if HAN.search(text):
        return "zh"
    return "en"


def answer_language(question, interface_language):
    """The language to answer the question in: always one of LANGUAGE_NAMES' or English, each with its notices.

    A question in ideographs alone (「会議室予約方法」, 「社長名前」) is written the same way in Japanese and in
    Chinese, and a few characters hold nothing else to tell them apart. Kotatsu is for a Japanese team, so such a
    question is Japanese when the asker's interface speaks Japanese or the knowledge base holds a talk spoken in
    Japanese, and Chinese only when neither does: a Japanese employee is never answered, or refused, in Chinese.
    Any kana make a question Japanese whatever the rest."""
    language = question_language(question)
    if language == "zh" and ((interface_language or "").startswith("ja") or Video.objects.filter(language="ja").exists()):
        return "ja"
    return language


def link_at(url, second):
    """The media URL opening at the second: YouTube reads &t=Ns, other media the #t=N fragment."""
    second = int(second)
    if urlsplit(url).hostname in YOUTUBE_HOSTS:
        return f"{url}{'&' if '?' in url else '?'}t={second}s"
    return f"{url.split('#')[0]}#t={second}"


def source_block(number, passage, language="en"):
    """The passage as the prompt gives it, for an answer in `language` (see glossed)."""
    text = passage.text if question_language(passage.text) == language else glossed(passage.text, language)
    return f'[{number}] "{passage.video.title}" ({clock(passage.start_s)}-{clock(passage.end_s)}): {text}'


def clock(seconds):
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}:{seconds:02d}"


def recent_history(history, model, budget_tokens=HISTORY_TOKENS):
    """The latest turns that fit in budget_tokens, oldest first."""
    kept, used = [], 0
    for message in reversed(history):
        used += model.count_tokens(message["content"])
        if used > budget_tokens:
            break
        kept.append(message)
    return kept[::-1]


def grounded_sampling_params(temperature=0.0, copied_ids=()):
    """copied_ids: token ids of the excerpts, favoured by COPY_BIAS."""
    return SamplingParams(temperature=temperature, frequency_penalty=FREQUENCY_PENALTY,
                          stop_repeated_ngram=STOP_REPEATED_NGRAM,
                          logit_bias=tuple((token, COPY_BIAS) for token in sorted(set(copied_ids)) if COPY_BIAS))


class GroundedAnswer:
    """Iterate for the answer's checked sentences (or its one notice); afterwards text (what was streamed,
    joined), sources, ttft_s (when the model's first token came) and token counts are set.

    Retrieval happens on construction, so a prompt over the window fails before anything is streamed.
    interface_language: the asker's ("ja", "en"), by default the language active for the request.
    """

    def __init__(self, question, history=(), filters=retrieval.Filters(), model_name=None,
                 max_tokens=DEFAULT_MAX_TOKENS, temperature=0.0, interface_language=None):
        self.started = time.perf_counter()
        self.question = question
        self.language = answer_language(question, interface_language or translation.get_language())
        self.model_name = model_name or serving_model(ModelMark.ANSWERS)
        self.model = answering_model(self.model_name)
        self.history = recent_history(list(history), self.model)
        room = self.model.context_length - max_tokens - self.model.count_chat_tokens(self.messages([]))
        passages = fit_passages(
            question, retrieval.retrieve(question, filters), min(SOURCE_TOKENS, room),
            lambda passage: self.model.count_tokens(source_block(0, passage, self.language)),
        )
        # Passages that never say a name the question says are about something else: none is given.
        self.passages = [] if names_no_passage_says(question, passages) else passages
        self.stream = None
        self.notice = None
        if not self.passages:
            self.notice = NOT_COVERED_IN[self.language]
        elif self.language != "en" and self.model_name in ENGLISH_ONLY_MODELS:
            self.notice = ENGLISH_ONLY_NOTICE[self.language].format(model=self.model_name)
        else:
            copied = [passage.text for passage in self.passages if question_language(passage.text) == self.language]
            copied_ids = self.model.engine.tokenizer.encode(" ".join(copied)) if copied else ()
            self.stream = self.model.stream_chat(self.messages(self.passages), max_tokens,
                                                 grounded_sampling_params(temperature, copied_ids),
                                                 shared_system_prompt=SYSTEM_PROMPT)
        self.text = ""
        self.sources = []
        self.dropped = []  # the model's sentences the check left out (AnswerCheck.dropped)
        self.ttft_s = None

    def messages(self, passages):
        sources = "\n".join(source_block(number, passage, self.language)
                            for number, passage in enumerate(passages, start=1))
        system = f"{SYSTEM_PROMPT}\n\n{sources}" if passages else SYSTEM_PROMPT
        if self.language != "en":
            system += (f"\n\nAnswer in {LANGUAGE_NAMES[self.language]}, whatever the language of the excerpts. "
                       f"If they do not say the answer, reply only: {SHORT_REFUSAL[self.language]}")
        return [{"role": "system", "content": system}, *self.history, {"role": "user", "content": self.question}]

    @property
    def prompt_tokens(self):
        return self.stream.prompt_tokens if self.stream else 0

    @property
    def completion_tokens(self):
        return self.stream.completion_tokens if self.stream else 0

    @property
    def finish_reason(self):
        return self.stream.finish_reason if self.stream else "stop"

    def __iter__(self):
        if not self.stream:
            self.ttft_s = time.perf_counter() - self.started
            self.text, self.sources = self.notice, cited_sources(self.question, "", self.passages)
            yield self.notice
            return
        check = AnswerCheck(self.question, self.passages, " ".join(message["content"] for message in self.history),
                            self.language)
        yield from checked_sentences(self.timed(self.stream), check)
        self.dropped = check.dropped
        # A refusal lists no sources, nor quotes "the closest moment": they would suggest an answer. On the
        # evaluation set the segment closest to "What is the guest Wi-Fi password?" ("Your password must be at
        # least 16 characters long", cosine 0.53) is as close as those that answer a question (0.45-0.60).
        self.text, self.sources = check.text, [] if check.refused else check.evidence.sources(check.text)

    def timed(self, deltas):
        for delta in deltas:
            if self.ttft_s is None:
                self.ttft_s = time.perf_counter() - self.started
            yield delta


def warm_up():
    """What the first question would otherwise pay for: the embedding model, the FAISS and BM25 indexes, this
    node's LLM, and the system prompt's keys and values, which every grounded question then reuses."""
    retrieval.retrieve(SYSTEM_PROMPT)
    model = answering_model()
    messages = [{"role": "system", "content": f"{SYSTEM_PROMPT}\n\n"}, {"role": "user", "content": "Hello."}]
    "".join(model.stream_chat(messages, 1, grounded_sampling_params(), shared_system_prompt=SYSTEM_PROMPT))


def names_no_passage_says(question, passages):
    """The names (capitalized words in Latin letters, see Facts.names) the question says and no passage nor its
    video's title does, in any spelling close to it: the passages are then about something else, however close
    their words ("What is the guest Wi-Fi password?" retrieves "Your password must be at least 16 characters
    long", and a model answers "The guest Wi-Fi password is 16 characters long"). Only checked when every passage
    is in Latin script: a name may be transliterated from kana or kanji (佐藤 -> Sato)."""
    if any(question_language(passage.text) != "en" for passage in passages):
        return []
    said = Facts(" ".join(f"{passage.video.title} {passage.text}" for passage in passages)).words
    return sorted(name for name in Facts(question).names if not said_name(name.lower(), said))


def said_name(name, words):
    """Whether the name is among words, as said_word tells, or spelled closely (NAME_SPELLING) by one of them:
    the asker types "Sarah" where whisper wrote "Sara". Short names (Wi, Fi, EU) must be said as they are."""
    if said_word(name, words):
        return True
    return len(name) >= 4 and any(difflib.SequenceMatcher(None, name, word).ratio() >= NAME_SPELLING for word in words)


def fit_passages(question, passages, budget_tokens, tokens_of):
    """The best passages that fit in budget_tokens together, the best one always: when it is longer than the
    budget, it is cut to the run of its segments around the one closest to the question. The passage search
    ranks first is never dropped for its length."""
    kept = retrieval.fit_to_budget(passages, budget_tokens, tokens_of)
    if not passages or (kept and kept[0] is passages[0]):
        return kept
    best = trimmed_passage(question, passages[0], budget_tokens, tokens_of)
    return [best, *retrieval.fit_to_budget(passages[1:], budget_tokens - tokens_of(best), tokens_of)]


def trimmed_passage(question, passage, budget_tokens, tokens_of):
    """The passage cut to the longest run of its segments that fits the budget, grown a segment at a time on
    either side of the segment closest to the question."""
    segments = passage.segments
    model_name = active_embedding_model()
    closest = int(np.argmax(passage_segment_vectors([passage], model_name) @ query_vector(question, model_name)))
    low, high = closest, closest + 1
    grown = True
    while grown:
        grown = False
        for wider_low, wider_high in ((low, high + 1), (low - 1, high)):
            if wider_low >= 0 and wider_high <= len(segments):
                if tokens_of(passage_with(passage, segments[wider_low:wider_high])) <= budget_tokens:
                    low, high, grown = wider_low, wider_high, True
                    break
    return passage_with(passage, segments[low:high])


def passage_with(passage, segments):
    return dataclasses.replace(passage, segments=segments, start_s=segments[0]["start"], end_s=segments[-1]["end"])


def sentences_of(text):
    """The text cut after each sentence end, every piece keeping its spacing: "".join() gives the text back."""
    pieces, start = [], 0
    for end in SENTENCE_END.finditer(text):
        if end.end() > start:
            pieces.append(text[start:end.end()])
            start = end.end()
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def checked_sentences(deltas, check):
    """The generated text deltas as the sentences `check` (an AnswerCheck) lets through, each as soon as it is
    finished: when the next one has begun, so its spacing is settled; the rest when generation stops."""
    pending = ""  # generated, not yet sent: the sentence being written
    for delta in deltas:
        *finished, pending = sentences_of(pending + delta) or [""]
        for sentence in finished:
            if checked := check.take(sentence):
                yield checked
    if checked := check.finish(pending):
        yield checked


# ---------------------------------------------------------------- facts a sentence states, to check against its sources

KANJI_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
KANJI_UNITS = {"十": 10, "百": 100, "千": 1000}
KANJI_MYRIADS = {"万": 10**4, "億": 10**8, "兆": 10**12}
KANJI_NUMERAL = re.compile(f"[{''.join([*KANJI_DIGITS, *KANJI_UNITS, *KANJI_MYRIADS])}]+")
# "2 million", "200万": text2num reads "two million" but leaves a digit before the word as it is.
SCALED = re.compile(r"(\d+(?:\.\d+)?)\s*(thousand|million|billion|万|億|兆)(?![a-z])", re.IGNORECASE)
SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9, **KANJI_MYRIADS}
DIGIT_GROUPING = re.compile(r"(?<=\d)[,，](?=\d{3}\b)")
NUMBER = re.compile(r"\d+(?:\.\d+)?")
# Clock times, read after numbers are digits: "6 in the morning", "6 a.m.", "3 pm", "15:00", "午後2時", "11時半".
ENGLISH_TIME = re.compile(
    r"\b(\d{1,2})(?:[:.](\d{2}))?\s*(a\.?\s?m\b\.?|p\.?\s?m\b\.?|in the morning|in the afternoon|in the evening"
    r"|at night|o'?clock)", re.IGNORECASE)
CLOCK_TIME = re.compile(r"\b(\d{1,2}):(\d{2})\b")
JAPANESE_TIME = re.compile(r"(午前|午後)?\s*(\d{1,2})\s*時(?!間)(?:\s*(\d{1,2})\s*分|(半))?")
AFTERNOON = ("p", "in the afternoon", "in the evening", "午後")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WEEKDAY = re.compile(rf"\b({'|'.join(WEEKDAYS)})\b|([月火水木金土日])曜", re.IGNORECASE)
JAPANESE_WEEKDAYS = "月火水木金土日"
# A weekday as glossed() reads it: "水曜日" whole, so that its gloss follows it.
GLOSSED_WEEKDAY = re.compile(rf"\b({'|'.join(WEEKDAYS)})\b|([月火水木金土日])曜日?", re.IGNORECASE)
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")
# "May" only capitalized: "may" is also the verb.
MONTH = re.compile(rf"\b((?i:{'|'.join(month for month in MONTHS if month != 'may')})|May)\b|(\d{{1,2}})\s*月(?!曜)")
# A year given to a date or a thing: "2023年9月", "2023年の予算", "September 2023", "March 14, 2024", "14th of March
# 2024" (see AnswerCheck.without_invented_years).
DATE_YEAR = re.compile(
    r"(?P<japanese>(?:19|20)\d{2})\s*年(?:\s*(?=\d{1,2}\s*月)|の\s*)"
    rf"|\b(?P<date>(?:{'|'.join(month.title() for month in MONTHS)})(?:\s+\d{{1,2}}(?:st|nd|rd|th)?)?),?\s+"
    r"(?:of\s+)?(?P<year>(?:19|20)\d{2})\b")
# A capitalized word in Latin letters: a name when the sources never say it, in any case (see Facts.names). It may
# stand right after kana or kanji ("バックアップはAWSに"). One with digits ("Q3") is left to the number check.
LATIN_WORD = re.compile(r"[A-Za-zÀ-ɏ]+")
CAPITALIZED = re.compile(r"(?<![A-Za-zÀ-ɏ0-9'’-])[A-Z][A-Za-zÀ-ɏ]*(?![A-Za-zÀ-ɏ'’-]*\d)")
NOT_NAMES = {"i", "am", "pm"}
# How close (difflib's ratio) a source's word must be to a name the question says to count as saying it:
# "sara" for "sarah" is 0.89, "kengi" for "kenji" 0.8, "osaka" for "oslo" 0.44.
NAME_SPELLING = 0.8
# English words that state no fact of their own: a sentence's head that adds only these to the question's words
# restates the question (see AnswerCheck.supported_head). Not scikit-learn's stop words: those count "fire",
# "system", "move", "bill" and the number words as saying nothing.
FUNCTION_WORDS = frozenset("""
    a an the this that these those it its it's is are was were be been being am will would shall should can could
    may might must do does did has have had of in on at to for from by with about into onto over under as and or
    but so than then there here which who whom whose what when where why how not no i me my we our us you your
    he him his she her they them their
""".split())
HIRAGANA = re.compile("[\u3040-\u309f]")


def kanji_number(numeral):
    """The value of a kanji numeral: 百二十 -> 120, 三千 -> 3000, 二十四 -> 24, 二百万 -> 2000000, 二〇二六 -> 2026
    (digit by digit); None for a myriad alone (万 in 万一)."""
    if all(character in KANJI_DIGITS for character in numeral):
        return int("".join(str(KANJI_DIGITS[character]) for character in numeral))
    total = section = digit = 0
    for character in numeral:
        if character in KANJI_DIGITS:
            digit = digit * 10 + KANJI_DIGITS[character]
        elif character in KANJI_UNITS:
            section += (digit or 1) * KANJI_UNITS[character]
            digit = 0
        elif section + digit:
            total += (section + digit) * KANJI_MYRIADS[character]
            section = digit = 0
    value = total + section + digit
    return value if value or numeral[0] in KANJI_DIGITS else None


def with_digits(text):
    """The text with every number in digits, whatever form it was written in: NFKC makes full-width digits
    ASCII, kanji numerals and English number words (text2num: "forty eight", "two hundred and ten", "fourteenth"
    -> 14th) become their value, "2 million" and "200万" too. "one" is left a word: it is mostly "one of them"."""
    text = DIGIT_GROUPING.sub("", unicodedata.normalize("NFKC", text))
    text = KANJI_NUMERAL.sub(lambda match: str(value) if (value := kanji_number(match.group(0))) is not None
                             else match.group(0), text)
    text = SCALED.sub(lambda match: plain_number(float(match.group(1)) * SCALES[match.group(2).lower()]), text)
    return alpha2digit(text, "en", threshold=2)


def plain_number(value):
    return str(int(value)) if float(value).is_integer() else str(value)


def glossed(text, language):
    """An excerpt's text for an answer in another language, with its facts written out for it: numbers in digits,
    and each weekday and clock time followed by its form in the answer's language when that is English or
    Japanese ("Saturday (土曜日)", "水曜日 (Wednesday)", "午後2時 (2 pm)"). A small model translating them gets
    them wrong or leaves them out (Qwen 1.5B: "water Monday" for 水曜日, "2,000万" for 2 million, Saturday left out).
    Months are not glossed: Qwen translates them, and the glosses drew its answer to "which city?" to a month. A
    kanji 一 is left as it is: it is mostly part of a word (一緒, 統一)."""
    if question_language(text) == "en":
        text = with_digits(text)
    else:
        text = KANJI_NUMERAL.sub(lambda match: str(value) if (value := kanji_number(match.group(0))) not in (None, 1)
                                 else match.group(0), unicodedata.normalize("NFKC", text))
    if language not in ("en", "ja"):
        return text

    def weekday(match):
        day = WEEKDAYS.index(match.group(1).lower()) if match.group(1) else JAPANESE_WEEKDAYS.index(match.group(2))
        said = f"{JAPANESE_WEEKDAYS[day]}曜日" if language == "ja" else WEEKDAYS[day].title()
        return f"{match.group(0)} ({said})"

    def clock_time(match, hour, minute, afternoon):
        if language == "ja":
            said = f"{'午後' if afternoon else '午前'}{hour}時{f'{minute}分' if minute else ''}"
        else:
            # "am", not "a.m.": a period inside the gloss, copied into the answer, would end its sentence there.
            said = f"{hour}{f':{minute:02d}' if minute else ''} {'pm' if afternoon else 'am'}"
        return f"{match.group(0)} ({said})"

    text = GLOSSED_WEEKDAY.sub(weekday, text)
    if language == "ja":
        # "at six o'clock" and "at night" do not say which half of the day: left as they are.
        return ENGLISH_TIME.sub(
            lambda match: match.group(0) if match.group(3).lower().startswith(("o", "at night")) else clock_time(
                match, int(match.group(1)), int(match.group(2) or 0), match.group(3).lower().startswith(AFTERNOON)),
            text)
    return JAPANESE_TIME.sub(
        lambda match: clock_time(match, int(match.group(2)), 30 if match.group(4) else int(match.group(3) or 0),
                                 match.group(1) == "午後") if match.group(1) else match.group(0),
        text)


class Facts:
    """The checkable facts a text states: numbers (by value), clock times ((hour, minute) candidates: a time
    without a.m. or p.m. may be either), weekdays and months (by index, English or Japanese), and capitalized
    words (names: only checked against sources in Latin script)."""

    def __init__(self, text):
        text = with_digits(text)
        self.times = []  # one set of (hour, minute) candidates per time said
        spans = []  # where times and months are said: their numbers are not counted again as numbers
        for match in ENGLISH_TIME.finditer(text):
            hour, minute, part = int(match.group(1)) % 12, int(match.group(2) or 0), match.group(3).lower()
            if part.startswith(AFTERNOON) or (part == "at night" and hour >= 6):
                hour += 12
            self.times.append({(hour, minute)} if not part.startswith("o") else twelve_hour(hour, minute))
            spans.append(match.span())
        for match in CLOCK_TIME.finditer(text):
            if not overlaps(match.span(), spans):
                hour, minute = int(match.group(1)), int(match.group(2))
                ambiguous = hour <= 12 and not match.group(1).startswith("0")
                self.times.append(twelve_hour(hour % 12, minute) if ambiguous else {(hour % 24, minute)})
                spans.append(match.span())
        for match in JAPANESE_TIME.finditer(text):
            hour, minute = int(match.group(2)) % 12, 30 if match.group(4) else int(match.group(3) or 0)
            if match.group(1):
                self.times.append({(hour + 12 * (match.group(1) == "午後"), minute)})
            else:
                self.times.append(twelve_hour(hour, minute))
            spans.append(match.span())
        self.months = set()
        for match in MONTH.finditer(text):
            self.months.add(MONTHS.index(match.group(1).lower()) + 1 if match.group(1) else int(match.group(2)))
            spans.append(match.span())
        self.weekdays = {WEEKDAYS.index(match.group(1).lower()) if match.group(1)
                         else JAPANESE_WEEKDAYS.index(match.group(2)) for match in WEEKDAY.finditer(text)}
        self.numbers = {float(match.group(0)) for match in NUMBER.finditer(text)}
        self.bare_numbers = {float(match.group(0)) for match in NUMBER.finditer(text)
                             if not overlaps(match.span(), spans)}
        self.words = {word.lower() for word in LATIN_WORD.findall(text)}
        self.names = {word for word in capitalized_inside(text) if word.lower() not in NOT_NAMES
                      and word.lower() not in WEEKDAYS and word.lower() not in MONTHS}

    def unsupported(self, sources, names=True):
        """What this text states that `sources` (Facts) do not say, as short labels; empty when all is said. A
        number is said in any form; 1 is never checked ("first", "a"); a time is said as that time, or as its
        hour standing alone ("at six"); a name is said in any case (names=False: not checked)."""
        missing = [plain_number(number) for number in sorted(self.bare_numbers - sources.numbers) if number != 1]
        said_times = set().union(*sources.times)
        missing += [f"{hour:02d}:{minute:02d}" for time in self.times if not time & said_times
                    for hour, minute in [min(time)] if not (hour % 12 or 12) in sources.bare_numbers]
        missing += [WEEKDAYS[day] for day in sorted(self.weekdays - sources.weekdays)]
        missing += [MONTHS[month - 1] for month in sorted(self.months - sources.months) if 1 <= month <= 12]
        if names:
            missing += sorted(name for name in self.names if not said_word(name.lower(), sources.words))
        return missing


def twelve_hour(hour, minute):
    """A clock time said without a.m. or p.m.: either."""
    return {(hour % 12, minute), (hour % 12 + 12, minute)}


def overlaps(span, spans):
    return any(span[0] < end and start < span[1] for start, end in spans)


def capitalized_inside(text):
    """Capitalized words that do not begin a sentence, a clause after a colon, or a quotation."""
    words = []
    for match in CAPITALIZED.finditer(text):
        before = text[:match.start()].rstrip(" \"“‘'(「")
        if before and before[-1] not in ".!?:;。！？":
            words.append(match.group(0))
    return words


def said_word(word, words):
    """Whether the word, or the word less a plural or possessive ending, is among words."""
    return any(form in words for form in (word, word.removesuffix("s"), word.removesuffix("es"), f"{word}s"))


class AnswerCheck:
    """The model's answer checked a finished sentence at a time, so each can be streamed as soon as it passes.

    A sentence said again is dropped (a loop too short for SamplingParams.stop_repeated_ngram), and so is the
    unfinished last one, cut by the token limit or by that stop, unless the answer has no finished sentence.
    Every kept sentence's citations name passages that were given (see `cited`). The spacing after a sentence
    is sent with the next one, so the streamed text never ends in spaces and `text` is exactly what was sent.

    A sentence stating a number, time, weekday, month or (when the passages are in Latin script) name that
    neither the question, the conversation before it nor the passages say is dropped: small models invent
    them ("down for 18 days" for two hours, a Wi-Fi password "123456"). So is the model's own refusal
    (SHORT_REFUSAL). When every sentence is dropped, the answer is the product's refusal in the question's
    language (`refused`).

    context: what the conversation said before (facts the asker gave count as said)."""

    def __init__(self, question, passages, context="", language="en"):
        self.question, self.passages = question, passages
        self.said = set()
        self.spacing = ""
        self.text = ""
        self.finished_any = False
        self.language = language
        self.dropped = []
        self.refused = False
        self.source_facts = Facts(" ".join([question, context, *(passage.text for passage in passages)]))
        self.check_names = all(question_language(passage.text) == "en" for passage in passages)

    def take(self, sentence):
        """The finished sentence's checked text to send, or "" when it repeats one already sent or is dropped."""
        self.finished_any = True
        words = " ".join(retrieval.tokenize(CITATION.sub("", sentence)))
        if words and words in self.said:
            return ""
        self.said.add(words)
        body = sentence.rstrip()
        if not body:
            self.spacing += sentence
            return ""
        plain = CITATION.sub("", body)
        if is_short_refusal(plain):
            self.dropped.append(body)
            return ""
        spacing = sentence[len(body):]
        if self.unsupported(plain):
            body = self.without_invented_years(body)
            plain = CITATION.sub("", body)
        if self.unsupported(plain):
            body, cut = self.supported_head(body)
            self.dropped.append(cut)
            if not body:
                return ""
        checked = self.spacing + self.cited(body)
        self.spacing = spacing
        self.text += checked
        return checked

    def unsupported(self, text):
        return Facts(text).unsupported(self.source_facts, names=self.check_names)

    def without_invented_years(self, sentence):
        """The sentence without the years the sources never say that it gives a date or a thing of
        ("2023年9月に" -> "9月に", "September 1, 2023" -> "September 1", "2023年の予算" -> "予算"): a small model
        dates what the talk says without a year, and the date itself is the talk's. Each year taken out is
        recorded in dropped."""

        def unless_said(match):
            if float(match.group("japanese") or match.group("year")) in self.source_facts.numbers:
                return match.group(0)
            date = match.group("date") or ""
            self.dropped.append(match.group(0)[len(date):].strip(" ,"))
            return date

        return DATE_YEAR.sub(unless_said, sentence)

    def supported_head(self, sentence):
        """(head, cut): the sentence cut before its first clause that states a fact the sources do not say, its
        citations and its end kept ("It takes place in Vienna, Austria [1]." -> "It takes place in Vienna [1].",
        "Austria"); ("", sentence) when its first clause states one: then the claim itself is unsupported, not a
        detail added to it. So too when the head says nothing the question did not ("The data center in Osaka"
        for "Which cloud provider hosts the backups of the Osaka data center?"): the claim was in the cut part."""
        plain = CITATION.sub("", sentence).rstrip()
        end = plain[len(plain.rstrip(SENTENCE_ENDS)):]
        head = ""
        for boundary in CLAUSE_BOUNDARY.finditer(plain):
            if self.unsupported(plain[:boundary.start()]):
                break
            head = plain[:boundary.start()]
        if not head.strip() or not says_more_than(head, self.question):
            return "", sentence
        citations = "".join(f" [{number}]" for number in dict.fromkeys(CITATION.findall(sentence)))
        return f"{head}{citations}{end}", plain[len(head):len(plain) - len(end)].strip(CLAUSE_MARKS)

    @functools.cached_property
    def evidence(self):
        # Built when first needed (it reads the segments' stored vectors): a sentence citing a given passage is sent without it.
        return Evidence(self.question, self.passages)

    def finish(self, tail):
        """What to send of the text left when generation stopped: the product's refusal when every sentence
        was dropped."""
        sent = ""
        if tail.strip() and (tail.rstrip().endswith(tuple(SENTENCE_ENDS)) or not self.finished_any):
            sent = self.take(tail)
        if self.dropped and not self.text:
            self.refused = True
            self.text = NOT_COVERED_IN[self.language]
            return self.text
        return sent

    def cited(self, sentence):
        """The sentence with its citations checked: a number not given is dropped, and a sentence left citing
        nothing is cited to the passage whose segments best support it."""
        given = len(self.passages)
        kept = CITATION.sub(lambda match: match.group(0) if 1 <= int(match.group(1)) <= given else "", sentence)
        body = CITATION.sub("", kept)
        if CITATION.search(kept) or not body.strip(" \n" + SENTENCE_ENDS):
            return kept
        support = self.evidence.support(body, embed_texts([body], self.evidence.model_name),
                                        range(len(self.evidence.segments)))
        trailing = body[len(body.rstrip()):]
        return cite_sentence(body.rstrip(), self.evidence.owners[int(np.argmax(support))]) + trailing


def says_more_than(text, question):
    """Whether the text says a word the question does not, function words (FUNCTION_WORDS) aside, and in
    Japanese a pair of characters without hiragana (particles and endings: "は", "です"; "ドに" in "クラウドに" for
    "どのクラウドですか" says nothing new); a word counts as said in its plural form too."""
    asked = set(retrieval.tokenize(question))
    return any(not said_word(term, asked) and term not in FUNCTION_WORDS and not HIRAGANA.search(term)
               for term in retrieval.tokenize(text))


def is_short_refusal(sentence):
    """Whether the sentence is the reply the model is told to give when the excerpts do not say the answer."""
    said = sentence.strip().rstrip(SENTENCE_ENDS).strip().lower()
    return any(said == refusal.rstrip(SENTENCE_ENDS).lower() for refusal in SHORT_REFUSAL.values())


def cited_sources(question, answer, passages):
    """One source per passage given to the model, numbered as in the prompt (see Evidence.sources)."""
    return Evidence(question, passages).sources(answer) if passages else []


def cite_sentence(sentence, number):
    """The sentence with the citation before its final punctuation: "It is at 3 am [1]."."""
    head = sentence.rstrip(SENTENCE_ENDS)
    return f"{head} [{number}]{sentence[len(head):]}"


def states_a_fact(term, names):
    """Whether a BM25 term states what the answer check checks: a number other than 1, a weekday, a month, or
    one of `names` (lower-cased)."""
    if NUMBER.fullmatch(term):
        return float(term) != 1
    return term in WEEKDAYS or term in MONTHS or term in names


class Evidence:
    """The passages given to the model, as transcript segments with their vectors, to place citations on. The
    segments' vectors are those stored at ingestion and the question's the one retrieval made: only the answer's
    own sentences are embedded here, one short text each, since a sentence in another language than its source
    (a Japanese answer citing an English talk) can be matched to it by meaning alone."""

    def __init__(self, question, passages):
        self.question = question
        self.passages = passages
        self.segments = [segment for passage in passages for segment in passage.segments]
        self.owners = [number for number, passage in enumerate(passages, start=1) for _ in passage.segments]  # [S]
        self.model_name = active_embedding_model()
        self.question_vector = query_vector(question, self.model_name)  # [D]
        self.segment_vectors = passage_segment_vectors(passages, self.model_name)  # [S, D]
        self.segment_terms = [set(retrieval.tokenize(segment["text"])) for segment in self.segments]

    def support(self, claim, claim_vectors, among):
        """How well each segment of `among` (indices) supports a claim [len(among)]: the share of the claim's
        distinctive words (those the question did not bring, function words aside, weighted by how rare they are
        among the segments, and FACT_WEIGHT times more when they state a checkable fact: a number other than 1, a
        weekday, a month, a name) that the segment says, then the claim's and the question's meaning as
        tie-breakers. "The sales office in Lisbon opens on September 1st" is said by "We are opening a sales
        office in Lisbon in September", not by "Registration opens on the 1st of August"."""
        among = list(among)
        distinctive = set(retrieval.tokenize(claim)) - set(retrieval.tokenize(self.question)) - FUNCTION_WORDS
        names = {name.lower() for name in Facts(claim).names}
        weights = {term: math.log(1 + len(self.segments) / (1 + sum(term in terms for terms in self.segment_terms)))
                   * (FACT_WEIGHT if states_a_fact(term, names) else 1.0) for term in distinctive}
        total = sum(weights.values()) or 1.0
        said = np.array([sum(weight for term, weight in weights.items() if term in self.segment_terms[index])
                         for index in among]) / total  # [A]
        vectors = self.segment_vectors[among]  # [A, D]
        meaning = np.max(vectors @ claim_vectors.T, axis=1) if len(claim_vectors) else 0.0  # [A]
        return said + 0.5 * meaning + 0.25 * (vectors @ self.question_vector)

    def sources(self, answer):
        """One source per passage, each pointing at the segment that best supports the answer's sentence citing
        it that one of its segments says most nearly (the sentence closest to the question when none cites it;
        the question alone for an empty answer). Its label's second ("second", and "start_s") is where that
        segment begins; its link opens LEAD_IN_S before."""
        sentences = [sentence for sentence in sentences_of(answer) if sentence.strip()]
        plain = [CITATION.sub("", sentence) for sentence in sentences]
        sentence_vectors = (embed_texts(plain, self.model_name) if plain
                            else np.zeros((0, len(self.question_vector))))  # [N, D]
        answering = sentence_vectors @ self.question_vector if plain else np.zeros(0)  # [N]
        closest = int(np.argmax(answering)) if plain else 0
        sources = []
        for number, passage in enumerate(self.passages, start=1):
            own = [index for index, owner in enumerate(self.owners) if owner == number]
            # Of the sentences citing the passage, the one a segment of it says most nearly states the fact it is
            # cited for (a small model's follow-up sentences restate the question around a word of the passage).
            citing = [index for index, sentence in enumerate(sentences) if str(number) in CITATION.findall(sentence)]
            if citing:
                said = (self.segment_vectors[own] @ sentence_vectors[citing].T).max(axis=0)  # [A, C] -> [C]
                claim = citing[int(np.argmax(said))]
            else:
                claim = closest
            support = self.support(plain[claim] if plain else "", sentence_vectors[claim : claim + 1], own)
            best = self.segments[own[int(np.argmax(support))]]
            second = int(best["start"])
            sources.append({
                "n": number,
                "video_id": passage.video.pk,
                "title": passage.video.title,
                "url": link_at(passage.video.url, max(second - LEAD_IN_S, 0)),
                "second": second,
                "start_s": float(second),
                "end_s": round(float(best["end"]), 2),
                "score": round(passage.score, 4),
            })
        return sources
