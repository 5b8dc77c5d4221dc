"""A number an answer states is compared with its sources by value: in digits, in English words (compounds and
ordinals too), in kanji numerals or in full-width digits, "two million" and "200万" alike."""
from assistant.answering import Facts, kanji_number, with_digits


def unsupported(claim, source):
    return Facts(claim).unsupported(Facts(source))


def test_english_number_words_and_their_compounds_become_digits():
    assert with_digits("forty eight servers, forty-eight trucks") == "48 servers, 48 trucks"
    assert with_digits("room two hundred and ten") == "room 210"
    assert with_digits("one thousand people") == "1000 people"
    assert with_digits("the fourteenth of March") == "the 14th of March"
    assert with_digits("two million euros and 2 million yen") == "2000000 euros and 2000000 yen"


def test_kanji_numerals_have_their_value():
    assert [kanji_number(numeral) for numeral in ("百二十", "三千", "二十四", "十一", "二百万", "一万二千", "二〇二六")] == [
        120, 3000, 24, 11, 2000000, 12000, 2026]
    assert kanji_number("万") is None
    assert with_digits("席の数は百二十席で、予算は二百万円です") == "席の数は120席で、予算は2000000円です"


def test_full_width_digits_and_digit_grouping_are_plain_numbers():
    assert with_digits("１２０席、1,000 people") == "120席、1000 people"


def test_a_number_said_in_another_form_is_supported():
    assert unsupported("We carry 48 servers.", "We will carry forty eight servers in two trucks.") == []
    assert unsupported("There are one hundred and twenty seats.", "席の数は百二十席です。") == []
    assert unsupported("Badges are issued in room 214.", "in room two hundred and fourteen") == []
    assert unsupported("It starts on the 14th.", "Saturday the fourteenth of March") == []
    assert unsupported("予算は200万ユーロです。", "The marketing budget for next year is two million euros.") == []


def test_a_number_the_sources_do_not_say_is_unsupported():
    assert unsupported("It is down for 18 days.", "down for at most two hours") == ["18"]
    assert unsupported("There are 12 seats.", "席の数は百二十席です。") == ["12"]
    assert unsupported("The password is 123456.", "Your password must be at least sixteen characters long.") == ["123456"]
    assert unsupported("2023年に始まります。", "The move starts on Saturday.") == ["2023"]


def test_one_is_never_checked_since_it_is_mostly_an_article_or_a_pronoun():
    assert unsupported("One of the servers stays, first of all.", "The servers move.") == []
