"""A video's summary, key moments and topics, written by the LLM in the ingest worker when the video is indexed.

The summary: the transcript goes to the LLM in one prompt when it fits the model's context, else map-reduce
(each window of segments summarized on its own, in one batch, then the notes summarized together). Key moments:
the starts of the transcript's sections, cut where consecutive segments change subject (by their embeddings),
so each second is a segment's start; the LLM titles them. Topics: a few short labels the LLM lists.

Every generated text is checked against the transcript (`grounding_problem`): the names and numbers it states
must be said in the video, most of its words too, and it must not loop. A summary that fails is generated once
more by sampling, then replaced by sentences of the transcript (extractive, labelled so on the page); a title
or topic that fails is replaced by words of the transcript.
"""
import logging
import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import psutil
from django.utils import timezone

from inference.cluster.planner import GIB
from inference.core.sampling import SamplingParams
from inference.models import ModelEntry, ModelMark
from inference.plumbing.leases import claim_for_this_process
from inference.selectors import profile_memory, serving_model
from ingest.embedding import embed_texts
from ingest.models import Video, VideoSummary

logger = logging.getLogger(__name__)

EXTRACTIVE_SEGMENTS = 3
SUMMARY_TOKENS = 128
MOST_SENTENCES = 4
TITLE_TOKENS = 14
TOPICS_TOKENS = 40
MOST_MOMENTS = 6
FEWEST_MOMENTS = 3
SEGMENTS_PER_MOMENT = 4  # a chapter for about every four segments, within FEWEST_MOMENTS..MOST_MOMENTS
SIMILARITY_WINDOW = 2  # segments on each side of a gap whose mean vectors are compared
MOST_TOPICS = 5
FEWEST_TOPICS = 2
TITLE_WORDS = 8
TOPIC_WORDS = 4
FEWEST_SUMMARY_WORDS = 8
# Share of a summary's content words that must be said in the video (by their first STEM letters): paraphrase
# passes, a story about something else does not.
GROUNDED_SHARE = 0.5
STEM = 5
GREEDY = SamplingParams(repetition_penalty=1.1)
RETRY = SamplingParams(temperature=0.7, top_p=0.9, repetition_penalty=1.1, seed=15)
# LLMs none of whose summaries passed the checks on the evaluation talks (bench/summaries.py, bench/RESULTS.md "Video
# summaries": SmolLM2 named what the videos do not say, kept 0 of 5 titles and no topic). Their videos get the
# labelled extractive digest at once, not minutes of a worker's generation thrown away.
NO_GROUNDED_SUMMARIES = frozenset({"smollm2-135m-instruct"})

SYSTEM_PROMPT = (
    "You write short, faithful summaries of recorded talks. Use only what the transcript says. "
    "Keep names, numbers and times exactly as they are spoken."
)
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having he
    her here hers herself him himself his how i if in into is it its itself just let lets me more most my myself
    no nor not now of off on once only or other our ours ourselves out over own same she should so some such than
    that the their theirs them themselves then there these they this those through to too under until up very was
    we were what when where which while who whom why will with would you your yours yourself yourselves talk
    speaker speakers video part discuss discusses discussed mentions mentioned explains explained describes
    described also includes including covers covered overall summary topic topics title transcript well like
    about please thank thanks everyone everybody next first finally today going get got make makes made""".split()
)
NUMBER_WORDS = {
    word: value
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty".split()
    )
    if word not in ("zero", "one")  # "one of them", "no one": pronouns far more often than counts
} | {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
     "hundred": 100, "thousand": 1000, "million": 1000000, "billion": 1000000000}
WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
SENTENCE_END = re.compile(r"[.!?。！？]\s*$")


@dataclass
class Digest:
    """What is written into a VideoSummary."""

    text: str
    kind: str
    key_moments: list
    topics: list
    model: str = ""
    fallback_reason: str = ""
    parts: int = 1  # transcript windows the LLM read separately (more than one: map-reduce)
    rejected: list = field(default_factory=list)  # generated summaries that failed the checks, and why


def do_summarize_video(video_id, model_name=None):
    """Write the video's summary, unless it is written or another live process is writing it; return whether
    this call wrote it. The LLM is `model_name` (default: the one that serves grounded answers); when it cannot be
    loaded the summary is extractive and says why."""
    VideoSummary.objects.get_or_create(video_id=video_id)
    unwritten = VideoSummary.objects.filter(video_id=video_id, written_at__isnull=True)
    summarizer = claim_for_this_process(unwritten, "summarizer", "claimed_at")
    if summarizer is None:
        return False
    video = Video.objects.get(pk=video_id)
    try:
        model_name = model_name or summary_model_name()  # reads the live nodes in Redis
        digest = write_digest(video.title, video.segments, summary_engine(model_name), model_name)
    except SummaryUnavailable as reason:
        logger.info("summary of video %s is extractive: %s", video_id, reason)
        digest = extractive_digest(spoken_segments(video.segments), str(reason), model_name)
    except Exception as error:  # a model missing from the catalog, a failed generation
        # Written anyway: a summary left claimed by this live process would wait for it forever.
        llm = model_name or "that serves answers"
        logger.warning("summary of video %s: LLM %s unavailable: %s", video_id, llm, error)
        digest = extractive_digest(spoken_segments(video.segments), f"LLM {llm} unavailable: {error}")
    written = VideoSummary.objects.filter(video_id=video_id, summarizer=summarizer).update(
        text=digest.text, kind=digest.kind, key_moments=digest.key_moments, topics=digest.topics,
        model=digest.model, fallback_reason=digest.fallback_reason, written_at=timezone.now(), summarizer="",
    )
    return written == 1


def summary_model_name():
    """The LLM that serves grounded answers now (its mark: the admin's or `models use kotatsu`, else
    KOTATSU_ANSWER_MODEL, else "auto"), so a video is summarized by the best LLM the cluster answers with."""
    return serving_model(ModelMark.ANSWERS)


class SummaryUnavailable(Exception):
    """Why this worker does not write the summary with the LLM (the extractive digest says it)."""


def summary_engine(model_name):
    """The worker's engine of the LLM. The worker loads it whole, so an LLM that serves answers only spread over
    several nodes is not loaded on a node with less free memory than it needs (the kernel would kill the worker)."""
    if model_name in NO_GROUNDED_SUMMARIES:
        raise SummaryUnavailable(f"{model_name} writes no summary that passes the checks; a larger LLM serving answers writes them")
    if model_name not in loaded_engines:
        profile = ModelEntry.objects.filter(name=model_name).values_list("profile", flat=True).first()
        needed, free = (profile_memory(profile).needed_bytes(1) if profile else 0), psutil.virtual_memory().available
        if needed > free:
            raise SummaryUnavailable(f"{model_name} needs {needed / GIB:.2f} GiB whole, this node has {free / GIB:.2f} GiB free")
        from inference.core.engine import Engine
        from inference.services import do_fetch_model

        loaded_engines[model_name] = Engine(do_fetch_model(model_name))  # fetched into the model cache if needed
    return loaded_engines[model_name]


loaded_engines = {}  # model name -> Engine: this worker's, loaded once per process


def spoken_segments(segments):
    return [segment for segment in segments if segment["text"].strip()]


def write_digest(title, segments, engine, model_name):
    """The LLM's summary, titled key moments and topics of a transcript, each checked against it."""
    segments = spoken_segments(segments)
    if not segments:
        return Digest("", VideoSummary.EXTRACTIVE, [], [], fallback_reason="the transcript is empty")
    texts = [segment["text"].strip() for segment in segments]
    reference = " ".join([title, *texts])
    writer = Writer(engine)
    vectors = embed_texts(texts)  # [n, d]
    sections = section_starts(vectors)
    section_texts = [" ".join(texts[start:end]) for start, end in zip(sections, [*sections[1:], len(texts)])]
    windows = writer.windows(texts)
    material = "\n".join(texts) if len(windows) == 1 else None
    prompts = [title_prompt(writer.windows([text])[0]) for text in section_texts]  # a long section's start
    if material is not None:
        prompts += [summary_prompt(title, material), topics_prompt(material)]
    else:
        prompts += [part_prompt(index, len(windows), window) for index, window in enumerate(windows)]
    replies = writer.generate(prompts)
    titles, replies = replies[: len(sections)], replies[len(sections):]
    if material is None:  # map-reduce: the notes on the parts, condensed until they fit one prompt
        material = writer.condense(replies)
        replies = writer.generate([summary_prompt(title, material, from_notes=True), topics_prompt(material)])
    summary, topics_reply = clean_summary(replies[0]), replies[1]
    rejected = []
    if problem := grounding_problem(summary, reference):
        rejected.append((summary, problem))
        summary = clean_summary(writer.generate([summary_prompt(title, material, len(windows) > 1)], RETRY)[0])
        if problem := grounding_problem(summary, reference):
            rejected.append((summary, problem))
    moments = [
        {"title": checked_title(reply, section_text, reference), "start_s": segments[start]["start"]}
        for reply, section_text, start in zip(titles, section_texts, sections)
    ]
    topics = checked_topics(topics_reply, reference) or extractive_topics(texts)
    if len(rejected) == 2:
        reason = "; ".join(f"{problem}" for _, problem in rejected)
        logger.info("summary falls back to the transcript's sentences: %s", reason)
        return Digest(extractive_text(texts, vectors), VideoSummary.EXTRACTIVE, moments, topics, model_name,
                      f"the LLM's summaries failed the checks: {reason}", len(windows), rejected)
    return Digest(summary, VideoSummary.ABSTRACTIVE, moments, topics, model_name, "", len(windows), rejected)


def extractive_digest(segments, reason, model=""):
    """Without an LLM: the most central sentences, sections titled by their own words, frequent words as topics.
    `model`: the LLM that serves answers but does not write this summary, if that is the reason."""
    texts = [segment["text"].strip() for segment in segments]
    if not texts:
        return Digest("", VideoSummary.EXTRACTIVE, [], [], model, fallback_reason=reason)
    vectors = embed_texts(texts)  # [n, d]
    sections = section_starts(vectors)
    moments = [
        {"title": words_of(" ".join(texts[start:end])), "start_s": segments[start]["start"]}
        for start, end in zip(sections, [*sections[1:], len(texts)])
    ]
    return Digest(extractive_text(texts, vectors), VideoSummary.EXTRACTIVE, moments, extractive_topics(texts), model,
                  fallback_reason=reason)


def extractive_text(texts, vectors):
    """The EXTRACTIVE_SEGMENTS distinct segments closest to the meaning of the whole, in spoken order (a phrase
    said again and again, "I will share the slides after the meeting", is central but said once is enough)."""
    centrality = vectors @ vectors.mean(axis=0)  # [n]
    chosen = {}
    for index in np.argsort(-centrality):
        chosen.setdefault(texts[index], texts.index(texts[index]))  # where it was first said
        if len(chosen) == EXTRACTIVE_SEGMENTS:
            break
    return " ".join(texts[index] for index in sorted(chosen.values()))


def section_starts(vectors):
    """Indices of the segments that begin a section [k], 0 first: the k-1 gaps between segments where the
    mean vectors of the SIMILARITY_WINDOW segments on either side are least alike, no two sections shorter
    than two segments when there are enough of them."""
    count = len(vectors)
    wanted = min(count, max(FEWEST_MOMENTS, min(MOST_MOMENTS, round(count / SEGMENTS_PER_MOMENT))))
    shortest = 2 if count >= 2 * wanted else 1
    similarity = {}
    for gap in range(shortest, count - shortest + 1):
        before = vectors[max(0, gap - SIMILARITY_WINDOW):gap].mean(axis=0)  # [d]
        after = vectors[gap:gap + SIMILARITY_WINDOW].mean(axis=0)  # [d]
        similarity[gap] = float(before @ after / (np.linalg.norm(before) * np.linalg.norm(after) or 1.0))
    starts = [0]
    for gap in sorted(similarity, key=similarity.get):
        if len(starts) == wanted:
            break
        if all(abs(gap - start) >= shortest for start in starts):
            starts.append(gap)
    return sorted(starts)


class Writer:
    """Prompts to this node's engine, in batches, within its context window."""

    def __init__(self, engine):
        self.engine = engine
        tokenizer = engine.tokenizer
        instructions = len(tokenizer.encode_chat(summary_prompt("", "")[0])) + 32  # the longest prompt's own words
        self.budget = engine.context_length - SUMMARY_TOKENS - instructions  # transcript tokens per prompt

    def count(self, text):
        return len(self.engine.tokenizer.encode(text))

    def windows(self, texts):
        """The lines grouped into windows of at most `budget` tokens (a longer line is cut)."""
        windows, current, used = [], [], 0
        for text in texts:
            tokens = self.count(text) + 1
            if tokens > self.budget:
                text = self.engine.tokenizer.decode(self.engine.tokenizer.encode(text)[: self.budget - 1])
                tokens = self.budget
            if current and used + tokens > self.budget:
                windows.append("\n".join(current))
                current, used = [], 0
            current.append(text)
            used += tokens
        if current:
            windows.append("\n".join(current))
        return windows

    def condense(self, notes):
        """Notes on consecutive parts, summarized again in groups until they fit one prompt."""
        while len(windows := self.windows(notes)) > 1:
            notes = self.generate([part_prompt(index, len(windows), window) for index, window in enumerate(windows)])
        return windows[0]

    def generate(self, prompts, params=GREEDY):
        """Each (messages, most tokens) prompt's reply, all in one batch of the token loop; a prompt longer than
        the window keeps its end."""
        tokenizer = self.engine.tokenizer
        room = self.engine.context_length - SUMMARY_TOKENS
        scheduler = self.engine.scheduler()
        try:
            ids = [scheduler.add(tokenizer.encode_chat(messages)[-room:], tokens, params) for messages, tokens in prompts]
            results = [scheduler.sequences[sequence_id].result for sequence_id in ids]
            while scheduler:
                scheduler.step()
        finally:
            scheduler.close()
        return [result.text.strip() for result in results]


def summary_prompt(title, material, from_notes=False):
    what = "Notes on the parts of a talk, in order" if from_notes else "Transcript of a talk"
    heading = f' titled "{title}"' if title else ""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"{what}{heading}:\n{material}\n\nSummarize the talk in two to four sentences."},
    ], SUMMARY_TOKENS


def part_prompt(index, count, window):
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Part {index + 1} of {count} of a talk:\n{window}\n\nSummarize this part in "
                                    "one or two sentences."},
    ], SUMMARY_TOKENS


def title_prompt(section_text):
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Part of a talk:\n{section_text}\n\nWrite a title of at most six words for "
                                    "this part. Answer with the title only."},
    ], TITLE_TOKENS


def topics_prompt(material):
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Transcript of a talk:\n{material}\n\nList the main topics of this talk, one "
                                    "per line, each in one to three words."},
    ], TOPICS_TOKENS


def clean_summary(text):
    """The reply without a heading, markdown or an unfinished last sentence, at most MOST_SENTENCES long."""
    text = re.sub(r"^\s*(?:summary|here is a summary[^:]*)\s*:\s*", "", text.replace("**", ""), flags=re.IGNORECASE)
    sentences = re.findall(r"[^.!?。！？]+[.!?。！？]+[\"'”)]*", " ".join(text.split()))
    return " ".join(sentence.strip() for sentence in sentences[:MOST_SENTENCES])


def words(text):
    return WORD.findall(text)


def stem(word):
    """A word's first STEM letters after a common English ending: "washing" and "wash", "burns" and "burn" meet."""
    word = word.lower().replace("’", "'").removesuffix("'s")
    for ending in ("ing", "ed", "es", "s", "ly"):
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            word = word[: -len(ending)]
            break
    return word[:STEM]


def numbers_in(text):
    """The numbers a text states, digits and English number words alike ("3", "three" -> 3)."""
    found = {int(digits) for digits in re.findall(r"\d+", text.replace(",", ""))}
    found |= {NUMBER_WORDS[word.lower()] for word in words(text) if word.lower() in NUMBER_WORDS}
    return found


def names_in(text):
    """Words that look like names: capitalized inside a sentence, or with capitals after the first letter."""
    names = []
    for sentence in re.split(r"(?<=[.!?:;])\s+|\n", text):
        for position, word in enumerate(words(sentence)):
            if not word[:1].isupper() or len(word) == 1 or word.lower() in STOPWORDS:
                continue
            if (position > 0 and word.lower() not in NUMBER_WORDS) or any(letter.isupper() for letter in word[1:]):
                names.append(word)
    return names


def grounding_problem(text, reference):
    """Why `text` cannot stand for a video whose title and transcript are `reference`, or None when it can."""
    said = {stem(word) for word in words(reference)}
    said_words = {word.lower() for word in words(reference)}
    if len(words(text)) < FEWEST_SUMMARY_WORDS:
        return f"too short ({len(words(text))} words)"
    lowered = [word.lower() for word in words(text)]
    grams = Counter(tuple(lowered[i:i + 4]) for i in range(len(lowered) - 3))
    if grams and grams.most_common(1)[0][1] >= 3:
        return f'repeats "{" ".join(grams.most_common(1)[0][0])}"'
    invented = [name for name in names_in(text) if name.lower().removesuffix("'s") not in said_words]
    if invented:
        return f"names what the video does not say: {', '.join(dict.fromkeys(invented))}"
    numbers = sorted(numbers_in(text) - numbers_in(reference))
    if numbers:
        return f"states numbers the video does not say: {', '.join(map(str, numbers))}"
    content = [word for word in lowered if len(word) > 3 and word not in STOPWORDS]
    unsaid = [word for word in content if stem(word) not in said]
    if content and len(unsaid) > (1 - GROUNDED_SHARE) * len(content):
        return f"most of its words are not said in the video: {', '.join(dict.fromkeys(unsaid))}"
    return None


def checked_title(reply, section_text, reference):
    """The LLM's title of a section when it is short and grounded in the section, else its own first words."""
    title = reply.splitlines()[0] if reply else ""
    title = re.sub(r"^\s*(?:title\s*:)?\s*", "", title.replace("**", ""), flags=re.IGNORECASE).strip(" \"'“”#*.")
    section_stems = {stem(word) for word in words(section_text)}
    content = [word for word in words(title) if word.lower() not in STOPWORDS]
    grounded = (
        0 < len(words(title)) <= TITLE_WORDS
        and any(stem(word) in section_stems for word in content)
        and not [name for name in names_in(f"x {title}") if stem(name) not in section_stems]
        and numbers_in(title) <= numbers_in(reference)
    )
    return title if grounded else words_of(section_text)


def words_of(text, count=TITLE_WORDS):
    """The first words of a text, "…" when there are more."""
    first = text.split()
    return " ".join(first[:count]).rstrip(",;:") + ("…" if len(first) > count else "")


def checked_topics(reply, reference):
    """The LLM's topic labels whose words are said in the video, deduplicated; [] when fewer than FEWEST_TOPICS."""
    said = {stem(word) for word in words(reference)}
    topics = {}
    for line in reply.splitlines():
        label = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", line.replace("**", "")).strip(" \"'“”.:")
        label_words = words(label)
        if not label_words or len(label_words) > TOPIC_WORDS or not numbers_in(label) <= numbers_in(reference):
            continue
        if all(stem(word) in said for word in label_words if word.lower() not in STOPWORDS):
            topics.setdefault(label.lower(), label)
    labels = list(topics.values())[:MOST_TOPICS]
    return labels if len(labels) >= FEWEST_TOPICS else []


def extractive_topics(texts):
    """The transcript's most frequent content words (those said in more than one segment first)."""
    segments_saying = Counter()
    for text in dict.fromkeys(texts):  # a phrase said again and again is not a topic
        segments_saying.update({word.lower() for word in words(text) if len(word) > 3 and word.lower() not in STOPWORDS})
    return [word for word, _ in segments_saying.most_common(MOST_TOPICS - 1)]
