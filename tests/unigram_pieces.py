"""A trained unigram tokenizer's pieces with ids and scores that do not change from run to run (imported as
`unigram_pieces`: pytest puts tests/ on sys.path).

`tokenizers`' UnigramTrainer learns the same pieces from the same corpus every run, but lists pieces of equal score
in hash-map order, leaves their scores differing in the last bits, and gives the characters it must keep but did not
learn the scores m, m + 1e-4, m + 2e-4, ... (m its lowest score) in hash-set order (its `finalize`; SentencePiece
orders them by frequency). Piece ids, hence a random model's embedding rows, changed from one test run to the next.
"""

import json

from tokenizers import Tokenizer

ADDED_CHARACTER_STEP = 1e-4  # UnigramTrainer's min_score_penalty_delta


def stable_pieces(tokenizer: Tokenizer, specials: list[str]) -> list[tuple[str, float]]:
    """`[(piece, log probability)]` of a trained `models.Unigram` tokenizer: `specials` first with score 0, as in
    SentencePiece models (DebertaV2Tokenizer finds [UNK] as ("[UNK]", 0.0)); the characters the trainer added get
    m, m + 1e-4, ... in order of spelling; then all but the specials by score rounded to 1e-6, highest first, ties
    by spelling."""
    trained = json.loads(tokenizer.to_str())["model"]["vocab"]
    scores = {piece: float(score) for piece, score in trained if piece not in specials}
    lowest = min(scores.values())

    def added(piece: str) -> bool:
        steps = (scores[piece] - lowest) / ADDED_CHARACTER_STEP
        return len(piece) == 1 and abs(steps - round(steps)) < 1e-6

    for step, piece in enumerate(sorted(filter(added, scores))):
        scores[piece] = lowest + step * ADDED_CHARACTER_STEP
    rounded = [(piece, round(score, 6)) for piece, score in scores.items()]
    return [(piece, 0.0) for piece in specials] + sorted(rounded, key=lambda pair: (-pair[1], pair[0]))
