import unicodedata
from itertools import groupby

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe

from ingest.retrieval import TOKEN, tokenize

register = template.Library()


@register.filter
def highlighted(text, query):
    """The text, escaped, with the words it shares with the query in <mark>: the same terms BM25 matches
    (words, or the character bigrams of Japanese, Chinese and Korean)."""
    terms = set(tokenize(query))
    marked = [False] * len(text)
    for match in TOKEN.finditer(text):
        run = match.group()
        if match.group(1) is None or len(run) == 1:
            if unicodedata.normalize("NFKC", run).lower() in terms:
                marked[match.start():match.end()] = [True] * len(run)
            continue
        for index in range(len(run) - 1):
            if unicodedata.normalize("NFKC", run[index:index + 2]).lower() in terms:
                marked[match.start() + index:match.start() + index + 2] = [True, True]
    pieces, position = [], 0
    for is_marked, group in groupby(marked):
        length = len(list(group))
        piece = escape(text[position:position + length])
        pieces.append(f"<mark>{piece}</mark>" if is_marked else piece)
        position += length
    return mark_safe("".join(pieces))
