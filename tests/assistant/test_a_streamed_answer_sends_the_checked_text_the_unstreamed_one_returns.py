"""A grounded answer is streamed a sentence at a time once each is checked (said once, citing only passages that
were given, the unfinished last one dropped), so its deltas joined are the answer /v1 returns unstreamed and the
dashboard stores: one text, whichever way it is asked for."""
import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.test import AsyncClient
from django.urls import reverse

from assistant.answering import CITATION, AnswerCheck, checked_sentences, sentences_of
from assistant.models import Message
from assistant.services import do_create_api_key
from ingest.retrieval import retrieve, tokenize
from tests.assistant.server_sent_events import parsed_events, server_sent_events

QUESTION = "Where is the fire extinguisher and where is the first aid kit?"


def test_each_sentence_is_sent_checked_as_soon_as_the_next_one_begins(knowledge):
    passages = retrieve(QUESTION)
    kitchen = next(number for number, passage in enumerate(passages, start=1) if passage.video == knowledge["kitchen"])
    generated = ("The fire extinguisher is mounted next to the north exit door [7]. "
                 "The fire extinguisher is mounted next to the north exit door [7].  "
                 f"The first aid kit sits in the white cabinet [{kitchen}] [0]. And then the")
    deltas = [generated[start:start + 3] for start in range(0, len(generated), 3)]
    taken = []

    def generation():
        for delta in deltas:
            taken.append(delta)
            yield delta

    check = AnswerCheck(QUESTION, passages)
    sent = []
    for sentence in checked_sentences(generation(), check):
        sent.append((sentence, len(taken)))

    assert [sentence for sentence, _ in sent] == [
        f"The fire extinguisher is mounted next to the north exit door [{kitchen}].",  # [7] was not given
        f" The first aid kit sits in the white cabinet [{kitchen}].",  # said once, [0] dropped, the tail cut
    ]
    assert sent[0][1] < len(deltas) / 2, "the first sentence went out while the model was still generating"
    assert "".join(sentence for sentence, _ in sent) == check.text


@pytest.mark.django_db(transaction=True)  # answers are generated in a thread of their own: committed data only
def test_v1_streamed_and_unstreamed_and_the_dashboard_give_the_same_checked_answer(client, knowledge):
    user = get_user_model().objects.create_user("kim", password="a long pass phrase 42")
    _, raw_key = do_create_api_key(user)
    body = {"model": "kotatsu", "messages": [{"role": "user", "content": QUESTION}]}

    async def completions():
        # One event loop for the request and the reading of its stream, as under the web server.
        api, key = AsyncClient(), {"Authorization": f"Bearer {raw_key}"}
        unstreamed = await api.post("/v1/chat/completions", body, content_type="application/json", headers=key)
        stream = await api.post("/v1/chat/completions", {**body, "stream": True}, content_type="application/json",
                                headers=key)
        return unstreamed.json(), stream["Content-Type"], b"".join([part async for part in stream.streaming_content])

    returned, content_type, stream = async_to_sync(completions)()
    answer = returned["choices"][0]["message"]["content"]
    assert content_type == "text/event-stream"
    chunks = [data for _, data in parsed_events(stream) if data != "[DONE]"]
    streamed = "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks)
    assert streamed == answer, "the stream sends the checked answer, not the model's raw deltas"
    assert chunks[-1]["sources"] == returned["sources"]

    client.force_login(user)
    events = server_sent_events(client.post(reverse("ask_stream"), {"question": QUESTION}))
    assert "".join(data["text"] for event, data in events if event == "delta") == answer
    assert Message.objects.get(role=Message.ASSISTANT).content == answer

    # Checked: every sentence that says something cites a passage that was given, and none is said twice.
    said = [" ".join(tokenize(CITATION.sub("", sentence))) for sentence in sentences_of(answer)]
    assert answer.strip() and len(said) == len(set(said))
    for sentence in sentences_of(answer):
        cited = [int(number) for number in CITATION.findall(sentence)]
        assert cited and all(1 <= number <= len(returned["sources"]) for number in cited), sentence

