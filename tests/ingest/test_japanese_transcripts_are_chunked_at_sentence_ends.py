"""A Japanese transcript is chunked by its length as well as by time, closes its chunks after 。！？ and keeps
its text without spaces between segments."""
from ingest.chunking import chunk_segments

# Whisper cuts Japanese speech into segments that often end mid-sentence.
JAPANESE_SEGMENTS = [
    "今日は社内インフラの運用について",
    "説明します。",
    "毎週火曜日にデータベースの",
    "バックアップを取ります。",
    "障害が起きたら",
    "まずオンコール担当者に連絡してください！",
    "復旧の手順は",
    "ウィキにまとめてあります。",
    "質問はありますか？",
    "では次の話題に移りましょう",
]


def timed(texts, seconds=5.0):
    return [{"start": i * seconds, "end": (i + 1) * seconds, "text": text} for i, text in enumerate(texts)]


def test_a_full_window_closes_after_its_last_japanese_sentence_end():
    chunks = chunk_segments(timed(JAPANESE_SEGMENTS), target_seconds=22.0, overlap_s=0.0)
    assert [chunk.text[-1] for chunk in chunks] == ["。", "？", "う"]
    assert chunks[0].text == "今日は社内インフラの運用について説明します。毎週火曜日にデータベースのバックアップを取ります。"
    assert all(chunk.end_s - chunk.start_s <= 22.0 + 5.0 for chunk in chunks), "at most one segment past the target"
    covered = [tuple(times) for chunk in chunks for times in chunk.segment_times]
    assert covered == [(segment["start"], segment["end"]) for segment in timed(JAPANESE_SEGMENTS)]


def test_a_long_japanese_talk_is_cut_by_its_length_not_only_every_minute():
    dense = timed(["毎週火曜日にデータベースのバックアップを取ります。"] * 60, seconds=2.0)  # 24 characters every 2 s
    chunks = chunk_segments(dense)
    assert all(len(chunk.text) <= 420 for chunk in chunks)
    assert all(chunk.end_s - chunk.start_s < 40.0 for chunk in chunks)


def test_english_segments_are_still_joined_by_spaces():
    chunks = chunk_segments(timed(["We back up the database", "every Tuesday.", "Kotatsuの設定", "も同じです。"]))
    assert chunks[0].text == "We back up the database every Tuesday. Kotatsuの設定も同じです。"
