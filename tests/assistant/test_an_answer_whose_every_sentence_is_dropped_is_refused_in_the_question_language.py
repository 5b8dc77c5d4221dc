"""When the check drops every sentence of an answer (invented facts, or the model's own short refusal), the
answer is the product's refusal in the question's language, and not an empty text."""
import pytest

from assistant.answering import NOT_COVERED_IN, SHORT_REFUSAL, AnswerCheck, checked_sentences
from ingest.retrieval import retrieve

pytestmark = pytest.mark.django_db


def answered(question, generated, language):
    check = AnswerCheck(question, retrieve(question), language=language)
    return list(checked_sentences([generated], check)), check


def test_an_answer_of_invented_facts_is_refused_in_english(knowledge):
    sent, check = answered("What is the guest Wi-Fi password of the Osaka office?",
                           "The guest Wi-Fi password is 123456 [1]. It changes every Tuesday [1].", "en")

    assert sent == [NOT_COVERED_IN["en"]] and check.text == NOT_COVERED_IN["en"] and check.refused


def test_an_answer_of_invented_facts_is_refused_in_japanese(knowledge):
    sent, check = answered("大阪オフィスの来客用Wi-Fiのパスワードは何ですか？", "パスワードは12345678です [1]。", "ja")

    assert sent == [NOT_COVERED_IN["ja"]] and check.refused


def test_the_models_own_refusal_becomes_the_products(knowledge):
    sent, check = answered("What is the guest Wi-Fi password of the Osaka office?", f"{SHORT_REFUSAL['en']} [1]", "en")

    assert sent == [NOT_COVERED_IN["en"]] and check.refused


def test_an_answer_with_one_supported_sentence_is_not_refused(knowledge):
    sent, check = answered("How much did revenue grow?",
                           "Revenue grew by eighteen percent. It grew in 14 countries.", "en")

    assert len(sent) == 1 and sent[0].startswith("Revenue grew by eighteen percent [") and not check.refused
