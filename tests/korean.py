"""Korean text the tests generate from a small word list (imported as `korean`: pytest puts tests/ on sys.path): a
corpus to train a tiny XLM-R-style tokenizer on, and scored sentence pairs in the shape of KLUE-STS (`labels.label`).

Each sentence describes an event: (time) subject (place) object verb. A pair's gold score is 5 times the share of
the event's parts (subject, object and verb, place, time) the two sentences have in common, so scores are graded by
construction and the same pair always gets the same score.
"""

import json
import random
from dataclasses import dataclass, replace
from pathlib import Path

# Nouns, each with its particles: (subject marker, topic marker) or (object marker, "also"), by its final consonant.
SUBJECTS = ["남자", "여자", "아이", "학생", "요리사", "농부", "할머니", "선생님"]
# (object, verb forms): the plain present, the past and the polite present of a verb that fits the object.
ACTIONS = [
    ("기타", ("연주한다", "연주했다", "연주합니다")),
    ("피아노", ("연주한다", "연주했다", "연주합니다")),
    ("김치찌개", ("끓인다", "끓였다", "끓입니다")),
    ("밥", ("먹는다", "먹었다", "먹습니다")),
    ("사과", ("먹는다", "먹었다", "먹습니다")),
    ("책", ("읽는다", "읽었다", "읽습니다")),
    ("신문", ("읽는다", "읽었다", "읽습니다")),
    ("공", ("찬다", "찼다", "찹니다")),
    ("편지", ("쓴다", "썼다", "씁니다")),
    ("그림", ("그린다", "그렸다", "그립니다")),
]
PLACES = ["공원에서", "부엌에서", "바닷가에서", "학교에서", "시장에서", "도서관에서", "운동장에서"]
TIMES = ["아침에", "밤에", "주말에", "점심시간에", "비 오는 날에"]
# Manner: style only, not scored; the last one pushes a sentence past a short `data.max_seq_length`.
ADVERBS = ["천천히", "조용히", "열심히", "즐겁게", "아주 오랫동안 정성스럽게"]


def _has_final_consonant(word: str) -> bool:
    """Whether the last Hangul syllable ends in a consonant (batchim), which chooses 이/가, 은/는, 을/를."""
    return (ord(word[-1]) - 0xAC00) % 28 != 0


def _particle(noun: str, after_vowel: str, after_consonant: str) -> str:
    return noun + (after_consonant if _has_final_consonant(noun) else after_vowel)


@dataclass(frozen=True)
class Event:
    """Who does what (where, when); `style` picks particles and verb ending, `adverb` the manner: neither is scored."""

    subject: str
    action: tuple[str, tuple[str, str, str]]
    place: str | None
    time: str | None
    adverb: str | None = None
    style: int = 0

    def sentence(self) -> str:
        topic = self.style % 2  # the subject marked as subject (이/가) or as topic (은/는)
        subject = _particle(self.subject, "는", "은") if topic else _particle(self.subject, "가", "이")
        obj = _particle(self.action[0], "를", "을")
        verb = self.action[1][self.style % 3]
        parts = [self.time, subject, self.place, obj, self.adverb, verb]
        return " ".join(part for part in parts if part) + "."


def random_event(rng: random.Random, adverb_p: float = 0.3) -> Event:
    return Event(
        subject=rng.choice(SUBJECTS),
        action=rng.choice(ACTIONS),
        place=rng.choice(PLACES) if rng.random() < 0.7 else None,
        time=rng.choice(TIMES) if rng.random() < 0.5 else None,
        adverb=rng.choice(ADVERBS) if rng.random() < adverb_p else None,
        style=rng.randrange(6),
    )


def similarity(first: Event, second: Event) -> float:
    """Gold score in [0, 5]: 5 x the share of subject, action, place and time the two events share."""
    same = [first.subject == second.subject, first.action == second.action]
    same += [first.place == second.place, first.time == second.time]
    return 5.0 * sum(same) / len(same)


def corpus(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [random_event(rng).sentence() for _ in range(count)]


def scored_pairs(count: int, seed: int) -> list[tuple[str, str, float]]:
    """Distinct pairs of distinct sentences with every score level: the second event is the first with 0 to 4 of its
    parts redrawn, and always another style (a paraphrase at score 5)."""
    rng = random.Random(seed)
    pairs: list[tuple[str, str, float]] = []
    while len(pairs) < count:
        first = random_event(rng)
        second = replace(first, style=(first.style + 1) % 6)  # other particles and verb ending
        for part in rng.sample(["subject", "action", "place", "time"], k=len(pairs) % 5):
            second = _redrawn(second, part, rng)
        pair = (first.sentence(), second.sentence(), similarity(first, second))
        if pair not in pairs:
            pairs.append(pair)
    return pairs


def _redrawn(event: Event, part: str, rng: random.Random) -> Event:
    """`event` with `part` changed to a different value, and its style redrawn (a paraphrase of the rest)."""
    choices = {"subject": SUBJECTS, "action": ACTIONS, "place": [*PLACES, None], "time": [*TIMES, None]}[part]
    value = rng.choice([choice for choice in choices if choice != getattr(event, part)])
    return replace(event, **{part: value}, style=rng.randrange(6))


def write_klue_sts_jsonl(path: Path, pairs: list[tuple[str, str, float]]) -> Path:
    """KLUE-STS's layout (the `klue` dataset's `sts` rows, as `datasets`' `to_json` writes them): the score nested
    under `labels.label`, beside fields a training run does not read."""
    with path.open("w", encoding="utf-8") as handle:
        for index, (first, second, score) in enumerate(pairs):
            row = {
                "guid": f"klue-sts-v1_train_{index:05d}",
                "source": "generated",
                "sentence1": first,
                "sentence2": second,
                "labels": {"label": score, "real-label": score, "binary-label": int(score >= 3.0)},
            }
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def write_scored_tsv(path: Path, pairs: list[tuple[str, str, float]]) -> Path:
    """A dev or test file with a header: `sentence1<TAB>sentence2<TAB>score`."""
    lines = ["sentence1\tsentence2\tscore", *(f"{a}\t{b}\t{score}" for a, b, score in pairs)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
