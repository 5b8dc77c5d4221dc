"""A clock time is compared as a time of day, in 12- or 24-hour form, English or Japanese ("6 in the morning" =
6 am = 06:00 = 午前六時; "3 pm" = 15:00 = 午後三時); weekdays and months by which they are (火曜日 = Tuesday,
三月 = March)."""
from assistant.answering import Facts


def unsupported(claim, source):
    return Facts(claim).unsupported(Facts(source))


MOVE = "The move starts on Saturday the fourteenth of March at six in the morning."


def test_a_time_of_day_is_the_same_in_every_form():
    for claim in ("It starts at 6 am.", "It starts at 6 a.m.", "It starts at 06:00.", "It starts at 6:00 AM.",
                  "It starts at six o'clock.", "午前六時に始まります。", "午前6時に始まります。"):
        assert unsupported(claim, MOVE) == [], claim
    workshop = "The next security workshop is on Thursday at two in the afternoon."
    for claim in ("It is at 2 pm.", "It is at 14:00.", "午後二時からです。", "It is at 2:00."):
        assert unsupported(claim, workshop) == [], claim


def test_another_time_of_day_is_unsupported():
    assert unsupported("It starts at 6 pm.", MOVE) == ["18:00"]
    assert unsupported("It starts at 18:00.", MOVE) == ["18:00"]
    assert unsupported("午後三時に始まります。", MOVE) == ["15:00"]
    assert unsupported("食堂は午前十時から営業します。", "営業時間は、午前十一時から午後二時までです。") == ["10:00"]


def test_an_hour_the_sources_say_without_the_part_of_day_supports_either():
    assert unsupported("The call is at 3 pm.", "The call is at three.") == []


def test_a_duration_in_hours_is_a_number_not_a_time():
    assert unsupported("ビルドサービスは2時間止まります。", "the build service will be down for at most two hours") == []


def test_weekdays_and_months_match_across_languages():
    assert unsupported("カレーの日は水曜日です。", "Curry day is every Wednesday.") == []
    assert unsupported("It starts on Saturday, in 三月.", MOVE) == []
    assert unsupported("移転は3月14日の土曜日に始まります。", MOVE) == []
    assert unsupported("The move starts on a Tuesday.", MOVE) == ["tuesday"]
    assert unsupported("移転は火曜日に始まります。", MOVE) == ["tuesday"]
    assert unsupported("It starts in April.", MOVE) == ["april"]


def test_may_the_verb_is_no_month():
    assert unsupported("You may bring a laptop.", "Bring your laptop.") == []
    assert unsupported("It opens in May.", "It opens in June.") == ["may"]
