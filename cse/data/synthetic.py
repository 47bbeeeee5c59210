"""Offline quickstart data: a synthetic corpus for unsupervised SimCSE and an STS-B-style scored dev set.

Every sentence is generated here from the module's own templates and word lists, so no public text is copied.
Each sentence describes an event (who does what to what, optionally where and when). Dev pairs are built by
editing one event, so their scores are graded semantic similarity by construction:

5 paraphrase (synonyms, reworded structure), 4 one detail added or dropped, 3 different object or place,
2 same person doing something else (or someone else doing the same kind of thing to something else),
1 only the place and time in common, 0 unrelated. A small jitter spreads the scores between these levels.
"""

import os
import random
from dataclasses import dataclass, replace
from pathlib import Path

from cse.whole_file import written_whole


def _concepts(spec: str) -> tuple[tuple[str, ...], ...]:
    """Parses ``"a|b; c"`` into ``(("a", "b"), ("c",))``: concepts, each with interchangeable surface forms."""
    return tuple(tuple(form.strip() for form in concept.split("|")) for concept in spec.split(";"))


_SUBJECTS = _concepts(
    "man|guy; woman|lady; boy|young boy; girl|little girl; child|kid; old man|elderly man; old woman|elderly woman;"
    "teenager|teen; student|pupil; chef|cook; farmer; police officer|policeman; nurse; artist|painter"
)
_ADJECTIVES = _concepts(
    "tall; smiling|grinning; tired|weary; cheerful|happy; nervous|anxious; barefoot; busy; quiet|silent"
)
_PLACES = _concepts(
    "in the park|at the park; in a kitchen|inside a kitchen; on the beach|at the beach; in the garden;"
    "on a busy street|on a crowded street; in the garage; by the river|next to the river|near the river;"
    "in an office; on a farm; at the market|in the market; in a classroom; on a balcony;"
    "at the train station|at the railway station; in the backyard|in the back yard"
)
_TIMES = _concepts(
    "in the morning|during the morning; at night|after dark; on a rainy afternoon|on a wet afternoon;"
    "over the weekend|during the weekend; at sunset|at dusk; before breakfast; after lunch"
)


@dataclass(frozen=True)
class _Action:
    """A kind of action: synonymous verbs as (-ing, present, past participle) and the objects it fits."""

    verbs: tuple[tuple[str, ...], ...]
    objects: tuple[tuple[str, ...], ...]

    @classmethod
    def parse(cls, verbs: str, objects: str) -> "_Action":
        """Builds an action from ``"ing,present,participle|..."`` verbs and ``_concepts`` objects."""
        return cls(verbs=tuple(tuple(verb.split(",")) for verb in verbs.split("|")), objects=_concepts(objects))


_ACTIONS = (
    _Action.parse("playing,plays,played", "a guitar; a piano; a violin|a fiddle; a flute; a drum"),
    _Action.parse(
        "cooking,cooks,cooked|preparing,prepares,prepared|making,makes,made",
        "a pot of soup; some rice; an omelette|an omelet; a pancake; a stew",
    ),
    _Action.parse(
        "reading,reads,read|looking through,looks through,looked through",
        "a newspaper|a paper; a book|a novel; a letter; a map; a postcard",
    ),
    _Action.parse("painting,paints,painted", "a fence; a wall; a door; a boat; a bench; a chair"),
    _Action.parse(
        "riding,rides,ridden", "a bicycle|a bike; a horse; a scooter; a skateboard; a motorcycle|a motorbike"
    ),
    _Action.parse(
        "carrying,carries,carried|hauling,hauls,hauled",
        "a basket; a box|a carton; a ladder; a suitcase; a bucket|a pail; a chair",
    ),
    _Action.parse(
        "washing,washes,washed|cleaning,cleans,cleaned",
        "a car; a window; a dog; a frying pan|a skillet; a rug|a carpet; a bicycle|a bike",
    ),
    _Action.parse(
        "slicing,slices,sliced|cutting,cuts,cut|chopping,chops,chopped",
        "an onion; a tomato; a loaf of bread; a cucumber; a carrot; an apple",
    ),
    _Action.parse(
        "throwing,throws,thrown|tossing,tosses,tossed", "a ball; a frisbee|a flying disc; a stick; a stone|a rock"
    ),
    _Action.parse(
        "fixing,fixes,fixed|repairing,repairs,repaired", "a radio; a roof; a chair; a lamp; a fence; a bicycle|a bike"
    ),
    _Action.parse("writing,writes,written", "a letter; a poem; a report; a shopping list; a postcard"),
    _Action.parse(
        "eating,eats,eaten", "an apple; a sandwich; a bowl of noodles; a slice of pizza|a piece of pizza; a carrot"
    ),
    _Action.parse("feeding,feeds,fed", "a cat; a goat; a horse; a parrot; a baby; a dog"),
    _Action.parse("pushing,pushes,pushed", "a cart; a stroller|a pram; a wheelbarrow; a lawn mower|a lawnmower; a car"),
    _Action.parse("planting,plants,planted", "a tree; a rose bush; a row of beans; a small shrub; a tomato"),
)
_TEMPLATES = ("progressive", "habitual", "passive", "there_is")
_PLACE_FIRST_TEMPLATE = "place_first"
_MIN_TRAIN_WORDS, _MAX_TRAIN_WORDS = 6, 20
_MAX_ATTEMPTS_PER_LINE = 200


@dataclass(frozen=True)
class QuickstartFiles:
    """Paths of the generated quickstart data.

    Attributes:
        train_file: One sentence per line, for unsupervised SimCSE.
        dev_file: Tab-separated ``sentence1``, ``sentence2``, ``score`` with a header line.
    """

    train_file: Path
    dev_file: Path


@dataclass(frozen=True)
class _Event:
    """Indices into the word lists; optional details are ``None`` when absent."""

    subject: int
    action: int
    obj: int
    adjective: int | None = None
    place: int | None = None
    time: int | None = None


def _random_event(rng: random.Random, adjective_p: float = 0.3, place_p: float = 0.7, time_p: float = 0.4) -> _Event:
    """Draws an event; each optional detail is present with its given probability."""
    action = rng.randrange(len(_ACTIONS))
    return _Event(
        subject=rng.randrange(len(_SUBJECTS)),
        action=action,
        obj=rng.randrange(len(_ACTIONS[action].objects)),
        adjective=rng.randrange(len(_ADJECTIVES)) if rng.random() < adjective_p else None,
        place=rng.randrange(len(_PLACES)) if rng.random() < place_p else None,
        time=rng.randrange(len(_TIMES)) if rng.random() < time_p else None,
    )


def _other(rng: random.Random, size: int, excluded: int | None) -> int:
    """Draws an index in ``range(size)`` different from ``excluded``."""
    return rng.choice([index for index in range(size) if index != excluded])


def _render(event: _Event, rng: random.Random, template: str | None = None) -> str:
    """Writes ``event`` as a sentence, choosing a template and synonyms at random."""
    noun = rng.choice(_SUBJECTS[event.subject])
    if event.adjective is not None:
        noun = f"{rng.choice(_ADJECTIVES[event.adjective])} {noun}"
    subject = f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"
    action = _ACTIONS[event.action]
    ing, present, participle = rng.choice(action.verbs)
    obj = rng.choice(action.objects[event.obj])
    place = rng.choice(_PLACES[event.place]) if event.place is not None else ""
    when = f" {rng.choice(_TIMES[event.time])}" if event.time is not None else ""
    where = f" {place}" if place else ""
    if template is None:
        template = rng.choice((*_TEMPLATES, _PLACE_FIRST_TEMPLATE) if place else _TEMPLATES)
    if template == "progressive":
        sentence = f"{subject} is {ing} {obj}{where}{when}"
    elif template == "habitual":
        sentence = f"{subject} {present} {obj}{where}{when}"
    elif template == "passive":
        sentence = f"{obj} is being {participle} by {subject}{where}{when}"
    elif template == "there_is":
        sentence = f"there is {subject} {ing} {obj}{where}{when}"
    else:
        sentence = f"{place}, {subject} is {ing} {obj}{when}"
    return sentence[0].upper() + sentence[1:] + "."


def _same_object_other_action(event: _Event) -> list[tuple[int, int]]:
    """Lists (action, object) pairs of other actions whose object can be named like the object of ``event``."""
    forms = set(_ACTIONS[event.action].objects[event.obj])
    return [
        (action_index, object_index)
        for action_index, action in enumerate(_ACTIONS)
        if action_index != event.action
        for object_index, obj in enumerate(action.objects)
        if forms.intersection(obj)
    ]


def _related_pair(rng: random.Random, level: int) -> tuple[str, str]:
    """Builds two sentences whose meaning overlaps as much as similarity ``level`` (0-5) says."""
    first = _random_event(rng, place_p=1.0 if level in (1, 3) else 0.7, time_p=1.0 if level == 1 else 0.4)
    if level == 5:
        second = first
    elif level == 4:
        detail = rng.choice(("adjective", "place", "time"))
        sizes = {"adjective": len(_ADJECTIVES), "place": len(_PLACES), "time": len(_TIMES)}
        present = getattr(first, detail) is not None
        second = replace(first, **{detail: None if present else rng.randrange(sizes[detail])})
    elif level == 3 and rng.random() < 0.5:
        second = replace(first, obj=_other(rng, len(_ACTIONS[first.action].objects), first.obj))
    elif level == 3:
        second = replace(first, place=_other(rng, len(_PLACES), first.place))
    elif level == 2 and rng.random() < 1 / 3:
        obj = _other(rng, len(_ACTIONS[first.action].objects), first.obj)
        second = _Event(_other(rng, len(_SUBJECTS), first.subject), first.action, obj, place=first.place)
    elif level == 2:
        shared_object = _same_object_other_action(first)
        if shared_object and rng.random() < 0.5:
            action, obj = rng.choice(shared_object)
        else:
            action = _other(rng, len(_ACTIONS), first.action)
            obj = rng.randrange(len(_ACTIONS[action].objects))
        place = first.place if rng.random() < 0.5 else _other(rng, len(_PLACES), first.place)
        second = _Event(first.subject, action, obj, place=place)
    else:
        action = _other(rng, len(_ACTIONS), first.action)
        second = _Event(
            subject=_other(rng, len(_SUBJECTS), first.subject),
            action=action,
            obj=rng.randrange(len(_ACTIONS[action].objects)),
            place=first.place if level == 1 else _other(rng, len(_PLACES), first.place),
            time=first.time if level == 1 else None,
        )
    sentence1 = _render(first, rng)
    sentence2 = _render(second, rng)
    while sentence2 == sentence1:
        sentence2 = _render(second, rng)
    return sentence1, sentence2


def _dev_rows(rng: random.Random, num_dev: int) -> list[tuple[str, str, float]]:
    """Draws ``num_dev`` distinct scored pairs, spread evenly over the six similarity levels."""
    levels = [index % 6 for index in range(num_dev)]
    rng.shuffle(levels)
    rows: list[tuple[str, str, float]] = []
    seen: set[tuple[str, str]] = set()
    for level in levels:
        for _ in range(_MAX_ATTEMPTS_PER_LINE):
            pair = _related_pair(rng, level)
            if pair not in seen:
                break
        else:
            raise ValueError(f"could not draw {num_dev} distinct dev pairs")
        seen.add(pair)
        score = min(5.0, max(0.0, level + rng.uniform(-0.4, 0.4)))
        rows.append((*pair, score))
    return rows


def _train_sentence(rng: random.Random) -> str:
    """Draws one training sentence: usually one event, sometimes two joined by "while"."""
    if rng.random() < 0.15:
        first = _render(_random_event(rng, adjective_p=0.0, time_p=0.0), rng)
        second = _render(_random_event(rng, adjective_p=0.0, time_p=0.0), rng, "progressive")
        return f"{first[:-1]} while {second[0].lower()}{second[1:]}"
    return _render(_random_event(rng), rng)


def _train_lines(rng: random.Random, num_train: int, excluded: set[str]) -> list[str]:
    """Draws ``num_train`` distinct sentences, none of them in ``excluded``."""
    lines: list[str] = []
    seen = set(excluded)
    for _ in range(num_train * _MAX_ATTEMPTS_PER_LINE):
        if len(lines) == num_train:
            break
        sentence = _train_sentence(rng)
        if sentence not in seen and _MIN_TRAIN_WORDS <= len(sentence.split()) <= _MAX_TRAIN_WORDS:
            seen.add(sentence)
            lines.append(sentence)
    if len(lines) < num_train:
        raise ValueError(f"could not draw {num_train} distinct training sentences")
    return lines


def _write_atomically(path: Path, text: str) -> None:
    """Writes ``text`` to a temporary file next to ``path``, then moves it into place, readable by all."""
    with written_whole(path) as temporary:
        temporary.write_text(text, encoding="utf-8", newline="\n")
        os.chmod(temporary, 0o644)


def quickstart_files(directory: str | Path) -> QuickstartFiles:
    """The paths `write_quickstart_data` writes in ``directory``; nothing is written."""
    return QuickstartFiles(train_file=Path(directory) / "train.txt", dev_file=Path(directory) / "dev.tsv")


def write_quickstart_data(
    directory: str | Path, num_train: int = 4000, num_dev: int = 400, seed: int = 0
) -> QuickstartFiles:
    """Generates the quickstart training corpus and scored dev set into ``directory``.

    Args:
        directory: Output folder, created if missing; existing files are overwritten.
        num_train: Number of distinct training sentences in ``train.txt``.
        num_dev: Number of scored sentence pairs in ``dev.tsv``.
        seed: Seed of the generator; the same seed gives byte-identical files.

    Returns:
        The paths of the written files.

    Raises:
        ValueError: If a count is negative or larger than the generator can fill with distinct lines.
    """
    if num_train < 0 or num_dev < 0:
        raise ValueError(f"counts must be non-negative, got num_train={num_train}, num_dev={num_dev}")
    rng = random.Random(seed)
    rows = _dev_rows(rng, num_dev)
    dev_sentences = {sentence for sentence1, sentence2, _ in rows for sentence in (sentence1, sentence2)}
    train = _train_lines(rng, num_train, dev_sentences)

    files = quickstart_files(directory)
    files.train_file.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(files.train_file, "".join(f"{line}\n" for line in train))
    dev_lines = ["sentence1\tsentence2\tscore"] + [f"{s1}\t{s2}\t{score:.1f}" for s1, s2, score in rows]
    _write_atomically(files.dev_file, "".join(f"{line}\n" for line in dev_lines))
    return files
