"""The answer check run on an answer given one passage of a single segment, for tests of what it keeps and drops."""
from ingest.retrieval import Passage

from assistant.answering import AnswerCheck, checked_sentences, question_language


def checked_against(source, answer, question):
    """(the checked answer's text, what the check dropped) for `answer` to `question` given one passage saying
    `source`; the answer's language is the question's."""
    passage = Passage(video=None, start_s=0.0, end_s=12.0, score=0.5, fused_rank=0.1,
                      segments=[{"start": 0.0, "end": 12.0, "text": source}])
    check = AnswerCheck(question, [passage], language=question_language(question))
    return "".join(checked_sentences([answer], check)), check.dropped
