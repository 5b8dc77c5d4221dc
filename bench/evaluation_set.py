"""The evaluation set of issues 14 and 15: spoken talks in English and Japanese, questions in both languages with
the talk and the second that answers them and the facts the answer must state, and questions no talk answers.

English talks are spoken by espeak-ng and transcribed by whisper. The Japanese talk is spoken by espeak-ng from
its kana reading (espeak-ng reads kanji letter by letter, which whisper takes for English) and comes with
Japanese manual subtitles timed to that audio: its transcript is the subtitles, what the pipeline takes with
INGEST_USE_SUBTITLES. Each sentence is spoken on its own and the sentences joined with a pause, so every
sentence's start and end in the audio are known (`speak_talk`).

A question's `facts` are groups of alternative forms (English and Japanese, words and digits): the answer states
the fact when it holds one form of every group. A question with `talk=None` is answered by no talk.
"""
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

WORDS_PER_MINUTE = 140
PAUSE_S = 0.6
SAMPLE_RATE = 22050  # espeak-ng's output


@dataclass(frozen=True)
class Talk:
    guid: str
    title: str
    language: str  # "en" or "ja"
    sentences: tuple
    readings: tuple = ()  # kana readings spoken instead of the sentences (Japanese)
    subtitled: bool = False  # its manual subtitles are its transcript

    @property
    def spoken_sentences(self):
        return self.readings or self.sentences


@dataclass(frozen=True)
class Question:
    text: str
    language: str
    talk: str | None  # guid of the talk that answers it; None: no talk does
    second: float | None = None  # a second inside the sentence that answers it
    facts: tuple = ()  # ((alternative, ...), ...): one alternative of every group

    @property
    def direction(self):
        """EN->EN, JA->EN, EN->JA, JA->JA, or EN->none / JA->none for the unanswerable."""
        talk_language = TALKS_BY_GUID[self.talk].language if self.talk else "none"
        return f"{self.language.upper()}->{talk_language.upper() if self.talk else talk_language}"


TALKS = (
    Talk(
        "infra-spring",
        "Infrastructure update for the spring quarter",
        "en",
        (
            "Good morning, this is the infrastructure update for the spring quarter.",
            "My name is Daniel Becker, and I lead the platform operations group.",
            "Our biggest project this quarter is moving the build farm to the new data center in Osaka.",
            "The move starts on Saturday the fourteenth of March at six in the morning.",
            "We will carry forty eight servers in two trucks, and the network team follows a day later.",
            "During the move the build service will be down for at most two hours.",
            "Please do not schedule any releases on that weekend.",
            "The new site has solar panels on its roof, which cover a third of its power.",
            "Cooling uses outside air for most of the year, so the electricity bill should drop.",
            "Next, the on-call rotation changes in April.",
            "Each engineer will be on call for one week, and then free for five weeks.",
            "Sarah Collins from the storage team takes over the rotation schedule.",
            "If you want to swap a week, send her a message at least ten days ahead.",
            "Finally, the old build servers will be donated to a high school in Kyoto.",
            "Thank you, and questions are welcome in the operations channel.",
        ),
    ),
    Talk(
        "sales-q3",
        "Sales review of the third quarter",
        "en",
        (
            "Welcome to the sales review of the third quarter.",
            "Revenue grew by twelve percent compared with the second quarter.",
            "Most of the growth came from our largest customer, Nordwind Logistics, which renewed its contract for three years.",
            "Our team in Brazil signed eleven new customers, more than any other region.",
            "Maria Santos, who leads that team, will explain how they did it at the next company meeting.",
            "Costs stayed flat, because video calls replaced travel for most customer visits.",
            "The marketing budget for next year is two million euros.",
            "Half of it goes to trade fairs in Europe and Asia.",
            "We are also opening a sales office in Lisbon in September.",
            "It will start with six people and grow to fifteen by the end of next year.",
            "The annual sales conference moves from June to October this year.",
            "It will take place in Vienna, at a hotel next to the central station.",
            "Registration opens on the first of August.",
            "Thanks to everyone for a strong quarter.",
        ),
    ),
    Talk(
        "security-training",
        "Security training for new employees",
        "en",
        (
            "Hello everyone, and welcome to the security training for new employees.",
            "I am Kenji Watanabe from the security team.",
            "Your password must be at least sixteen characters long.",
            "We recommend a passphrase of four or five random words instead of a single word.",
            "Every laptop encrypts its disk, and the recovery key is stored in the company vault.",
            "If you lose a laptop, call the help desk within one hour, at any time of day.",
            "The help desk number is printed on the back of your badge.",
            "Badges are issued in room two hundred and fourteen on the second floor.",
            "Phishing tests are sent by email about once a month.",
            "If you click a test link, you get a short video about what to look for.",
            "Laptops are replaced every four years, or earlier if they break.",
            "The next security workshop is on Thursday at two in the afternoon.",
            "Bring your laptop, because we will set up the password manager together.",
            "That is all for today, stay safe.",
        ),
    ),
    Talk(
        "shokudo",
        "新しい社員食堂のお知らせ",
        "ja",
        (
            "皆さん、おはようございます。総務部の山田です。",
            "今日は、新しい社員食堂についてお知らせします。",
            "食堂は来月一日に、本社ビルの七階にオープンします。",
            "営業時間は、午前十一時から午後二時までです。",
            "席の数は百二十席で、今の食堂の二倍になります。",
            "料理長は、京都のホテルで働いていた佐藤さんです。",
            "毎週水曜日は、カレーの日です。",
            "日替わり定食は五百円で、社員証で支払うことができます。",
            "ベジタリアン向けのメニューも毎日用意します。",
            "オープンの日には、先着五十名にデザートを無料で配ります。",
            "古い食堂は、会議室に改装される予定です。",
            "ご意見があれば、総務部までメールでお送りください。",
            "以上です。ありがとうございました。",
        ),
        readings=(
            "みなさん、おはようございます。そうむぶの やまだです。",
            "きょうは、あたらしい しゃいん しょくどうについて おしらせします。",
            "しょくどうは らいげつ ついたちに、ほんしゃ ビルの ななかいに オープンします。",
            "えいぎょう じかんは、ごぜん じゅういちじから ごご にじまでです。",
            "せきの かずは ひゃくにじゅっせきで、いまの しょくどうの にばいに なります。",
            "りょうりちょうは、きょうとの ホテルで はたらいていた さとうさんです。",
            "まいしゅう すいようびは、カレーの ひです。",
            "ひがわり ていしょくは ごひゃくえんで、しゃいんしょうで しはらうことが できます。",
            "ベジタリアン むけの メニューも まいにち よういします。",
            "オープンの ひには、せんちゃく ごじゅうめいに デザートを むりょうで くばります。",
            "ふるい しょくどうは、かいぎしつに かいそう される よていです。",
            "ごいけんが あれば、そうむぶまで メールで おおくりください。",
            "いじょうです。ありがとうございました。",
        ),
        subtitled=True,
    ),
)
TALKS_BY_GUID = {talk.guid: talk for talk in TALKS}

SIX_AM = ("six", "6:00", "6 a", "6am", "6 o", "6 in the morning", "at 6", "午前6時", "午前六時", "6時", "六時")
SATURDAY = ("saturday", "土曜")
FORTY_EIGHT = ("forty eight", "48", "四十八")
TWO_HOURS = ("two hours", "2 hours", "2時間", "二時間")
SARAH = ("sarah", "サラ")
SCHOOL = ("school", "学校", "高校")
TWELVE_PERCENT = ("twelve", "12", "十二")
NORDWIND = ("nordwind", "nord wind", "ノルトヴィント", "ノードウィンド")
ELEVEN = ("eleven", "11", "十一")
TWO_MILLION = ("two million", "2 million", "2000000", "200万", "二百万")
SEPTEMBER = ("september", "9月", "九月")
VIENNA = ("vienna", "ウィーン")
SIXTEEN = ("sixteen", "16", "十六")
WATANABE = ("kenji", "watanabe", "渡辺", "渡部", "ケンジ", "ワタナベ", "健二")
ONE_HOUR = ("one hour", "1 hour", "an hour", "1時間", "一時間")
ROOM_214 = ("214", "two hundred and fourteen", "two hundred fourteen", "二百十四")
THURSDAY = ("thursday", "木曜")
SEVENTH_FLOOR = ("seventh", "7th", "7階", "七階", "floor 7", "seven")
ELEVEN_AM = ("11", "eleven", "十一時")
HUNDRED_TWENTY = ("120", "one hundred and twenty", "hundred twenty", "百二十")
SATO = ("sato", "佐藤", "さとう", "サトウ")
WEDNESDAY = ("wednesday", "水曜")
FIVE_HUNDRED_YEN = ("500", "five hundred", "五百")

QUESTIONS = (
    # EN->EN and JA->EN: English talks.
    Question("When does the move of the build farm start?", "en", "infra-spring", 20.0, (SATURDAY, SIX_AM)),
    Question("ビルドファームの移転はいつ始まりますか？", "ja", "infra-spring", 20.0, (SATURDAY, SIX_AM)),
    Question("How many servers are moved to the new data center?", "en", "infra-spring", 26.0, (FORTY_EIGHT,)),
    Question("新しいデータセンターに運ばれるサーバーは何台ですか？", "ja", "infra-spring", 26.0, (FORTY_EIGHT,)),
    Question("How long will the build service be down during the move?", "en", "infra-spring", 32.0, (TWO_HOURS,)),
    Question("移転中、ビルドサービスはどのくらい止まりますか？", "ja", "infra-spring", 32.0, (TWO_HOURS,)),
    Question("Who takes over the on-call rotation schedule?", "en", "infra-spring", 65.0, (SARAH,)),
    Question("オンコールのローテーション表を引き継ぐのは誰ですか？", "ja", "infra-spring", 65.0, (SARAH,)),
    Question("What happens to the old build servers?", "en", "infra-spring", 76.0, (SCHOOL,)),
    Question("古いビルドサーバーはどうなりますか？", "ja", "infra-spring", 76.0, (SCHOOL,)),
    Question("By how much did revenue grow in the third quarter?", "en", "sales-q3", 6.0, (TWELVE_PERCENT,)),
    Question("第3四半期の売上は何パーセント伸びましたか？", "ja", "sales-q3", 6.0, (TWELVE_PERCENT,)),
    Question("Which customer renewed its contract for three years?", "en", "sales-q3", 13.0, (NORDWIND,)),
    Question("契約を3年間更新した顧客はどこですか？", "ja", "sales-q3", 13.0, (NORDWIND,)),
    Question("How many new customers did the team in Brazil sign?", "en", "sales-q3", 21.0, (ELEVEN,)),
    Question("ブラジルのチームは新しい顧客を何社獲得しましたか？", "ja", "sales-q3", 21.0, (ELEVEN,)),
    Question("What is the marketing budget for next year?", "en", "sales-q3", 40.0, (TWO_MILLION,)),
    Question("来年のマーケティング予算はいくらですか？", "ja", "sales-q3", 40.0, (TWO_MILLION,)),
    Question("When does the sales office in Lisbon open?", "en", "sales-q3", 49.0, (SEPTEMBER,)),
    Question("リスボンの営業所はいつ開設されますか？", "ja", "sales-q3", 49.0, (SEPTEMBER,)),
    Question("In which city will the annual sales conference take place?", "en", "sales-q3", 66.0, (VIENNA,)),
    Question("年次営業会議はどの都市で開かれますか？", "ja", "sales-q3", 66.0, (VIENNA,)),
    Question("How long must a password be?", "en", "security-training", 12.0, (SIXTEEN,)),
    Question("パスワードは最低何文字必要ですか？", "ja", "security-training", 12.0, (SIXTEEN,)),
    Question("Who gives the security training?", "en", "security-training", 8.0, (WATANABE,)),
    Question("セキュリティ研修の講師は誰ですか？", "ja", "security-training", 8.0, (WATANABE,)),
    Question("How soon must I call the help desk after losing a laptop?", "en", "security-training", 31.0, (ONE_HOUR,)),
    Question("ノートパソコンをなくしたら、いつまでにヘルプデスクに電話すべきですか？", "ja", "security-training", 31.0, (ONE_HOUR,)),
    Question("In which room are badges issued?", "en", "security-training", 41.0, (ROOM_214,)),
    Question("社員証はどの部屋で発行されますか？", "ja", "security-training", 41.0, (ROOM_214,)),
    Question("On which day is the next security workshop?", "en", "security-training", 62.0, (THURSDAY,)),
    Question("次のセキュリティワークショップは何曜日ですか？", "ja", "security-training", 62.0, (THURSDAY,)),
    # EN->JA and JA->JA: the Japanese talk.
    Question("On which floor will the new cafeteria open?", "en", "shokudo", 14.0, (SEVENTH_FLOOR,)),
    Question("新しい食堂は何階にオープンしますか？", "ja", "shokudo", 14.0, (SEVENTH_FLOOR,)),
    Question("From what time is the new cafeteria open?", "en", "shokudo", 20.0, (ELEVEN_AM,)),
    Question("新しい食堂は何時から営業しますか？", "ja", "shokudo", 20.0, (ELEVEN_AM,)),
    Question("How many seats does the new cafeteria have?", "en", "shokudo", 26.0, (HUNDRED_TWENTY,)),
    Question("新しい食堂の席はいくつありますか？", "ja", "shokudo", 26.0, (HUNDRED_TWENTY,)),
    Question("Who is the head chef of the new cafeteria?", "en", "shokudo", 32.0, (SATO,)),
    Question("新しい食堂の料理長は誰ですか？", "ja", "shokudo", 32.0, (SATO,)),
    Question("Which day of the week is curry day in the cafeteria?", "en", "shokudo", 36.0, (WEDNESDAY,)),
    Question("食堂のカレーの日は何曜日ですか？", "ja", "shokudo", 36.0, (WEDNESDAY,)),
    Question("How much does the daily set meal cost?", "en", "shokudo", 42.0, (FIVE_HUNDRED_YEN,)),
    Question("日替わり定食はいくらですか？", "ja", "shokudo", 42.0, (FIVE_HUNDRED_YEN,)),
    # Answered by no talk, some on the talks' topics.
    Question("What is the guest Wi-Fi password?", "en", None),
    Question("来客用Wi-Fiのパスワードは何ですか？", "ja", None),
    Question("Who is the new chief financial officer?", "en", None),
    Question("新しい最高財務責任者は誰ですか？", "ja", None),
    Question("When will the parking garage be closed for repairs?", "en", None),
    Question("駐車場が修理のために閉鎖されるのはいつですか？", "ja", None),
    Question("How many days of paid vacation do new employees get?", "en", None),
    Question("新入社員の有給休暇は何日ですか？", "ja", None),
    Question("Which cloud provider hosts the backups of the Osaka data center?", "en", None),
    Question("大阪のデータセンターのバックアップはどのクラウドに保存されますか？", "ja", None),
)


def speak_talk(talk, wav_path):
    """Speak the talk into wav_path, one sentence after another with a pause between; return each sentence's
    (start, end) in seconds."""
    wav_path = Path(wav_path)
    voice = "ja" if talk.language == "ja" else "en"
    frames, spans, position = [], [], 0
    pause = b"\0\0" * int(PAUSE_S * SAMPLE_RATE)
    for sentence in talk.spoken_sentences:
        sentence_path = wav_path.with_suffix(".sentence.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(WORDS_PER_MINUTE), "-w", str(sentence_path), sentence], check=True)
        with wave.open(str(sentence_path)) as sentence_wav:
            assert sentence_wav.getframerate() == SAMPLE_RATE and sentence_wav.getsampwidth() == 2
            samples = sentence_wav.readframes(sentence_wav.getnframes())
        sentence_path.unlink()
        start = position / SAMPLE_RATE
        position += len(samples) // 2
        spans.append((round(start, 2), round(position / SAMPLE_RATE, 2)))
        frames += [samples, pause]
        position += len(pause) // 2
    with wave.open(str(wav_path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(b"".join(frames))
    return spans


def sentence_at(talk, spans, second):
    """Index of the sentence spoken at `second`, or None when it falls in a pause or outside the talk."""
    for index, (start, end) in enumerate(spans):
        if start <= second <= end:
            return index
    return None


def subtitles_vtt(talk, spans):
    """WebVTT subtitles of the talk's sentences, timed to its audio."""
    cues = [
        f"{vtt_time(start)} --> {vtt_time(end)}\n{sentence}" for sentence, (start, end) in zip(talk.sentences, spans)
    ]
    return "WEBVTT\n\n" + "\n\n".join(cues) + "\n"


def vtt_time(seconds):
    hours, rest = divmod(seconds, 3600)
    minutes, rest = divmod(rest, 60)
    return f"{int(hours):02d}:{int(minutes):02d}:{rest:06.3f}"
