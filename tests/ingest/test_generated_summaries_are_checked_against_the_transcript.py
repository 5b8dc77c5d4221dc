"""What the LLM writes about a video is checked against its transcript before it is shown: names and numbers it
states must be said in the video, most of its words too, and it must not loop. The texts below are real LLM
outputs (the issue's invented answer, SmolLM2-135M's summary of the monthly update) and faithful rewordings."""
from ingest.summaries import checked_title, checked_topics, clean_summary, grounding_problem
from tests.ingest.talks import LONG_TALK

TRANSCRIPT = " ".join(["Monthly engineering update", *LONG_TALK])


def test_a_faithful_summary_passes_numbers_said_as_words_or_digits_alike():
    summary = (
        "The platform team reports that the coffee machine was repaired and the main database is copied to the "
        "backup server every night at 3 o'clock, with each copy kept for one month. The football team won the "
        "company league, and the summer party will be on the roof terrace."
    )
    assert grounding_problem(summary, TRANSCRIPT) is None


def test_names_the_video_does_not_say_are_refused():
    invented = (
        "The database is backed up on the server called Vault 2, which is a cloud-based backup service. "
        "The server is called Wireguard."
    )
    problem = grounding_problem(invented, TRANSCRIPT)
    assert problem.startswith("names what the video does not say") and "Vault" in problem and "Wireguard" in problem


def test_numbers_the_video_does_not_say_are_refused():
    problem = grounding_problem("The database is copied to the backup server every night at five o'clock.", TRANSCRIPT)
    assert problem == "states numbers the video does not say: 5"


def test_a_story_about_something_else_is_refused():
    smollm2_summary = (
        "This episode discusses a recent upgrade to the coffee machine, a repair made by a technician, and plans for "
        "a new bike parking in the courtyard. The bakery is expanded to accommodate more customers, and the city will "
        "extend its parking lanes with additional equipment. A new stadium is set to open in the city, and a new "
        "ballroom is added to the rooftop."
    )
    problem = grounding_problem(smollm2_summary, TRANSCRIPT)
    assert problem.startswith("most of its words are not said in the video") and "stadium" in problem


def test_a_loop_is_refused():
    looping = "The coffee machine was repaired. " + "A new ballroom is added to the rooftop. " * 3
    assert grounding_problem(looping, TRANSCRIPT).startswith('repeats "')


def test_a_runaway_reply_keeps_its_first_finished_sentences_only():
    reply = "**Summary:** The coffee machine works again. The fridge is emptied on Fridays. Rooms. Bikes. The band pla"
    assert clean_summary(reply) == "The coffee machine works again. The fridge is emptied on Fridays. Rooms. Bikes."


def test_a_title_not_about_its_section_is_replaced_by_the_section_s_own_words():
    section = LONG_TALK[9] + " " + LONG_TALK[10]
    assert checked_title("Title: Nightly database backups", section, TRANSCRIPT) == "Nightly database backups"
    assert checked_title("ISO standards for online data", section, TRANSCRIPT) == (
        "The main database is copied to the backup…"
    )


def test_topics_keep_the_labels_said_in_the_video():
    reply = "1. Coffee machine\n2. Database backups\n- Quantum computing\n* Bicycle parking\n3. Coffee machine"
    assert checked_topics(reply, TRANSCRIPT) == ["Coffee machine", "Database backups", "Bicycle parking"]
