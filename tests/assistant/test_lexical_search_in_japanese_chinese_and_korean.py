"""BM25 finds Japanese, Chinese and Korean text, written without spaces between words, by its character
bigrams, and still matches English names and numbers by whole words."""
import pytest

from ingest.models import Chunk, Source
from ingest.retrieval import MAX_PASSAGE_WORDS, lexical_index, retrieve, tokenize
from tests.assistant.knowledge import indexed_video

pytestmark = pytest.mark.django_db

JAPANESE_OPERATIONS = [
    "今日は社内インフラの運用について説明します。",
    "毎週火曜日にデータベースのバックアップを取ります。",
    "障害が起きたら、まずオンコール担当者に連絡してください。",
]
CHINESE_OPERATIONS = ["我们每天晚上检查服务器的日志。", "新员工第一周要完成安全培训。"]
KOREAN_OPERATIONS = ["회의실 예약은 사내 포털에서 합니다.", "출장 경비는 월말까지 정산하세요."]
RELEASE_NOTES = ["Release 4217 of the billing service ships on Thursday.", "It removes the legacy SOAP endpoint."]


@pytest.fixture
def multilingual_knowledge(knowledge):
    source = Source.objects.create(url="https://media.example/asia.xml")
    knowledge["japanese"] = indexed_video(source, "ja-ops", "インフラ運用", JAPANESE_OPERATIONS)
    knowledge["chinese"] = indexed_video(source, "zh-ops", "运维", CHINESE_OPERATIONS)
    knowledge["korean"] = indexed_video(source, "ko-ops", "사내 안내", KOREAN_OPERATIONS)
    knowledge["release"] = indexed_video(source, "release", "Release notes", RELEASE_NOTES)
    return knowledge


def videos_found(query, k=3):
    chunk_ids = lexical_index.search(query, None, k)
    return [Chunk.objects.get(pk=chunk_id).video for chunk_id in chunk_ids]


def test_cjk_runs_become_character_bigrams_and_latin_text_stays_words():
    assert tokenize("データベースのバックアップ") == [
        "デー", "ータ", "タベ", "ベー", "ース", "スの", "のバ", "バッ", "ック", "クア", "アッ", "ップ",
    ]
    assert tokenize("Kotatsuの2026年 ＶＰＮ v1.2") == ["kotatsu", "の", "2026", "年", "vpn", "v1", "2"]


def test_a_japanese_query_finds_the_japanese_chunk_that_contains_it(multilingual_knowledge):
    found = videos_found("データベースのバックアップ")
    assert found and found[0] == multilingual_knowledge["japanese"]
    assert "データベースのバックアップ" in found[0].chunks.first().text


def test_a_chinese_and_a_korean_query_find_their_chunk(multilingual_knowledge):
    assert videos_found("服务器日志")[0] == multilingual_knowledge["chinese"]
    assert videos_found("출장 경비")[0] == multilingual_knowledge["korean"]


def test_english_names_and_numbers_still_match_as_words(multilingual_knowledge):
    assert videos_found("WireGuard")[0] == multilingual_knowledge["vpn"]
    assert videos_found("when does release 4217 ship?")[0] == multilingual_knowledge["release"]
    assert lexical_index.search("ワイヤーガード", None, 3) == [], "no bigram of an unrelated Japanese word matches"


def test_a_long_japanese_video_on_the_topic_comes_in_passages_that_fit_the_source_budget(knowledge):
    source = Source.objects.create(url="https://media.example/long-ja.xml")
    sentences = [f"第{n}回の定例会議では、データベースのバックアップと復旧の手順を確認しました。" for n in range(1, 61)]
    video = indexed_video(source, "ja-long", "定例会議", sentences)
    passages = [passage for passage in retrieve("データベースのバックアップ") if passage.video == video]
    assert passages and all(len(tokenize(passage.text)) <= MAX_PASSAGE_WORDS for passage in passages)
    assert all(len(passage.text) < 1000 for passage in passages), "a passage is not the whole video"
    assert " " not in passages[0].text, "Japanese segments are joined without spaces"
