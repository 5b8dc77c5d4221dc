import re

from django import template
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe

register = template.Library()
CITATION = re.compile(r"\[(\d+)\]")


@register.filter
def with_citation_links(message):
    """An answer's text, escaped, with each [n] linking to the second of the video its source n points at: the
    title says that second, the link opens a few seconds before it (answering.LEAD_IN_S)."""
    sources = {source["n"]: source for source in message.sources}

    def link(match):
        source = sources.get(int(match.group(1)))
        if source is None:
            return match.group(0)
        return format_html(
            '<a class="citation" href="{}" target="_blank" rel="noopener" title="{} at {} s">[{}]</a>',
            source["url"], source["title"], int(source["start_s"]), source["n"],
        )

    # Escaping leaves "[n]" untouched, so the citations are found in the escaped text.
    return mark_safe(CITATION.sub(link, escape(message.content)))
