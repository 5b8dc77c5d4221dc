from ingest.chunking import chunk_segments


def segments_every(seconds, count, words_per_segment=5):
    return [
        {"start": i * seconds, "end": (i + 1) * seconds, "text": " ".join(f"w{i}_{j}" for j in range(words_per_segment))}
        for i in range(count)
    ]


def test_chunks_are_time_windows_of_about_a_minute_with_their_timestamps():
    chunks = chunk_segments(segments_every(5.0, 60))  # five minutes, 60 words a minute
    assert len(chunks) >= 5
    for chunk in chunks:
        assert chunk.end_s - chunk.start_s <= 60.0
        assert chunk.segment_times[0][0] == chunk.start_s and chunk.segment_times[-1][1] == chunk.end_s
    assert chunks[0].start_s == 0.0 and chunks[-1].end_s == 300.0


def test_chunks_close_at_about_200_words_when_speech_is_dense():
    chunks = chunk_segments(segments_every(2.0, 100, words_per_segment=10))
    assert all(len(chunk.text.split()) <= 210 for chunk in chunks)
    assert all(chunk.end_s - chunk.start_s < 60.0 for chunk in chunks)


def test_consecutive_chunks_overlap_so_no_sentence_is_only_cut():
    chunks = chunk_segments(segments_every(5.0, 60))
    for previous, following in zip(chunks, chunks[1:]):
        assert following.start_s < previous.end_s
        assert following.segment_times[0] in previous.segment_times


def test_every_segment_is_in_some_chunk_and_no_chunk_repeats_the_last_one():
    segments = segments_every(7.0, 23)
    chunks = chunk_segments(segments)
    covered = {tuple(times) for chunk in chunks for times in chunk.segment_times}
    assert covered == {(segment["start"], segment["end"]) for segment in segments}
    assert len({chunk.text for chunk in chunks}) == len(chunks)


def test_a_short_talk_is_one_chunk_and_silence_is_none():
    assert len(chunk_segments(segments_every(3.0, 4))) == 1
    assert chunk_segments([]) == []
