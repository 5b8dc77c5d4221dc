"""Scripts of the spoken test talks, with a question whose answer sits in the middle of the long one."""
import datetime as dt

from tests.ingest.media_site import Episode

LONG_TALK = [
    "Welcome to the monthly engineering update from the platform team.",
    "First, some news about the office coffee machine, which was repaired on Tuesday by a technician.",
    "It makes espresso again, and the milk frother works, so please clean it after every use.",
    "We also ordered new beans from a small roaster in the mountains, and the first bag arrives next week.",
    "The kitchen fridge will be emptied every Friday afternoon, so label your food with your name.",
    "Next, the new meeting rooms on the fourth floor are finished and can be booked from the calendar.",
    "Each room has a large screen, a camera for video calls, and a whiteboard with fresh markers.",
    "Please end your meetings on time, because the next team is often waiting outside the door.",
    "Now an important change for everyone who stores data on the shared servers.",
    "The main database is copied to the backup server every night at three o'clock.",
    "Each copy is kept for one month, and we test a full restore on the first Monday of every month.",
    "If you need an older copy, write to the operations group and tell them the date you want.",
    "Next, our bicycle parking in the courtyard has been extended with twenty new racks and a repair stand.",
    "Tools for flat tires hang on the wall next to the pump, and spare tubes are in the blue cabinet.",
    "The city will also paint a new cycle lane on the street in front of the building this spring.",
    "Our football team won the company league this season after a very close final match.",
    "The trophy is now on display in the entrance hall, next to the photos of last year's team.",
    "Training continues every Wednesday evening in the park, and new players are always welcome.",
    "Finally, the summer party will be held on the roof terrace, with a barbecue and a band playing jazz.",
    "Thank you for listening, and see you at the next update.",
]
QUESTION = "When is the database copied to the backup server?"
ANSWER_WORDS = ("backup server", "restore")


def long_talk(now=None):
    now = now or dt.datetime.now(dt.timezone.utc)
    return Episode("talk-update", "Monthly engineering update", LONG_TALK, now - dt.timedelta(hours=30))


def short_talk(now=None):
    now = now or dt.datetime.now(dt.timezone.utc)
    return Episode(
        "talk-welcome",
        "Welcome to new hires",
        ["Hello and welcome to the company.", "Your laptop is waiting for you at the front desk on the second floor."],
        now - dt.timedelta(hours=50),
    )


LATE_EPISODE_SENTENCES = ["The fire alarm will be tested on Friday at noon.", "There is no need to leave the building."]
