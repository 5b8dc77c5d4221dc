import argparse
import json
from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from assistant.answering import GroundedAnswer
from assistant.generation import DEFAULT_MAX_TOKENS, PromptTooLong
from ingest.retrieval import Filters
from assistant.services import do_record_exchange, do_start_conversation


class Command(BaseCommand):
    help = (
        "Answer a question from the knowledge base, streaming the answer; with --json the last line is "
        '{"answer", "sources": [{n, video_id, title, url, second, start_s, end_s, score}], "ttft_s"}; a source\'s url '
        "opens a few seconds before its second."
    )

    def add_arguments(self, parser):
        parser.add_argument("question")
        parser.add_argument("--user", help="keep the question and answer in this user's conversation history")
        parser.add_argument("--json", dest="as_json", action="store_true", help="end with the answer as one line of JSON")
        parser.add_argument("--source", type=int, help="only passages from this source id")
        parser.add_argument("--since", type=parse_date, help="only videos published on or after YYYY-MM-DD")
        parser.add_argument("--until", type=parse_date, help="only videos published before YYYY-MM-DD")
        parser.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS)

    def handle(self, *args, question, user, as_json, source, since, until, max_tokens, **options):
        if not question.strip():
            raise CommandError("the question is empty")
        owner = find_user(user) if user else None
        filters = Filters(source_id=source, published_after=since, published_before=until)
        try:
            answer = GroundedAnswer(question.strip(), filters=filters, max_tokens=max_tokens)
        except PromptTooLong as error:
            raise CommandError(str(error)) from None
        for delta in answer:
            self.stdout.write(delta, ending="")
            self.stdout.flush()
        self.stdout.write("")
        for source_ in answer.sources:
            self.stdout.write(f"[{source_['n']}] {source_['title']} at {source_['second']} s: {source_['url']}")
        if owner is not None:
            do_record_exchange(do_start_conversation(owner, question.strip()), question.strip(), answer)
        if as_json:
            result = {"answer": answer.text, "sources": answer.sources, "ttft_s": answer.ttft_s}
            self.stdout.write(json.dumps(result, ensure_ascii=False))


def find_user(username):
    try:
        return get_user_model().objects.get_by_natural_key(username)
    except get_user_model().DoesNotExist:
        raise CommandError(f"no user named {username!r}") from None


def parse_date(value):
    try:
        return timezone.make_aware(datetime.strptime(value, "%Y-%m-%d"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {value!r}") from None
