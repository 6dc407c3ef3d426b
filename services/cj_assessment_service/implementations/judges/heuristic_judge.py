"""Offline baseline judge from surface text features — useful without any API, never an assessment.

It exists so a batch can run end to end with no network and so LLM judges have a naive
baseline to beat. The features are the classic surface proxies of writing quality:

- length in words, on a log scale (more text helps, with diminishing returns),
- lexical diversity as the moving-average type/token ratio over 50-word windows
  (plain type/token ratio falls with length, so it would punish long essays twice),
- how far the mean sentence length is from a comfortable ~18 words,
- the share of long words (7+ letters),
- a rate of mechanical slips a spell-checker-free rule can see: a lower-case "i" on its
  own, a sentence starting in lower case, a letter repeated three times, a space before
  a comma or full stop, a comma or full stop glued to the next word.

The weights are set by hand so that no single feature dominates over the usual range of
school essays; they are not fitted to anything. Deterministic: the same texts give the
same verdict, and exact ties are broken by the texts' SHA-256, not by position, so
swapping A and B swaps the winner.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from dataclasses import dataclass

from services.cj_assessment_service.cj_core_logic.judging import JudgeRequest, JudgeVerdict

HEURISTIC_MODEL = "heuristic-text-features-v1"

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")
_MATTR_WINDOW = 50
_COMFORTABLE_SENTENCE_WORDS = 18.0
_SLIP_PATTERNS = (
    re.compile(r"(?<![\w'’])i(?![\w'’])"),  # lower-case pronoun "i"
    re.compile(r"[.!?]\s+[a-z]"),  # sentence starting in lower case
    re.compile(r"([A-Za-z])\1\1"),  # "sooo", "!!!" excluded by the letter class
    re.compile(r"\s[,.]"),  # space before a comma or full stop
    re.compile(r"[a-z][,.][A-Za-z]"),  # no space after a comma or full stop
)

# Hand-set weights (see module docstring): roughly one unit of score per feature's usual spread.
_WEIGHTS = {
    "log_words": 1.0,
    "diversity": 4.0,
    "sentence_length": -0.8,
    "long_words": 3.0,
    "slips_per_100_words": -0.25,
}


@dataclass(frozen=True)
class TextFeatures:
    words: int
    diversity: float  # moving-average type/token ratio, 0..1
    mean_sentence_words: float
    long_word_share: float
    slips_per_100_words: float

    @property
    def score(self) -> float:
        sentence_distance = abs(math.log(max(self.mean_sentence_words, 1.0) / _COMFORTABLE_SENTENCE_WORDS))
        return (
            _WEIGHTS["log_words"] * math.log1p(self.words)
            + _WEIGHTS["diversity"] * self.diversity
            + _WEIGHTS["sentence_length"] * sentence_distance
            + _WEIGHTS["long_words"] * self.long_word_share
            + _WEIGHTS["slips_per_100_words"] * self.slips_per_100_words
        )


def text_features(text: str) -> TextFeatures:
    words = _WORD.findall(text)
    n_words = len(words)
    if n_words == 0:
        return TextFeatures(0, 0.0, 0.0, 0.0, 0.0)
    lowered = [word.lower() for word in words]
    if n_words <= _MATTR_WINDOW:
        diversity = len(set(lowered)) / n_words
    else:
        ratios = [
            len(set(lowered[start : start + _MATTR_WINDOW])) / _MATTR_WINDOW
            for start in range(0, n_words - _MATTR_WINDOW + 1, 5)  # stride 5: same value, 5x cheaper
        ]
        diversity = sum(ratios) / len(ratios)
    sentences = max(1, len(_SENTENCE_END.findall(text.strip())))
    long_share = sum(1 for word in words if len(word) >= 7) / n_words
    slips = sum(len(pattern.findall(text)) for pattern in _SLIP_PATTERNS)
    return TextFeatures(
        words=n_words,
        diversity=diversity,
        mean_sentence_words=n_words / sentences,
        long_word_share=long_share,
        slips_per_100_words=100.0 * slips / n_words,
    )


def _describe(label: str, features: TextFeatures) -> str:
    return (
        f"Essay {label}: score {features.score:.2f} ({features.words} words, diversity {features.diversity:.2f}, "
        f"{features.mean_sentence_words:.1f} words/sentence, {features.long_word_share:.0%} long words, "
        f"{features.slips_per_100_words:.1f} slips/100 words)"
    )


class HeuristicJudge:
    name = "heuristic"
    model = HEURISTIC_MODEL
    is_assessor = False

    async def judge(self, request: JudgeRequest) -> JudgeVerdict:
        started = time.perf_counter()
        text_a, text_b = request.essay_a.text, request.essay_b.text
        features_a, features_b = text_features(text_a), text_features(text_b)
        difference = features_a.score - features_b.score
        if abs(difference) > 1e-9:
            winner = "A" if difference > 0 else "B"
            tie_note = ""
        else:
            # Position-free tie-break: compare content digests, so the same text wins wherever it is shown.
            digest_a = hashlib.sha256(text_a.encode()).hexdigest()
            digest_b = hashlib.sha256(text_b.encode()).hexdigest()
            winner = "A" if digest_a >= digest_b else "B"
            tie_note = " Equal feature scores; tie broken by a hash of the texts."
        # Confidence grows with the score gap: 0.5 for a tie, about 0.73 for a gap of 1.
        confidence = 1.0 / (1.0 + math.exp(-abs(difference)))
        justification = (
            "Text-feature baseline, not an assessment of quality: "
            f"{_describe('A', features_a)}; {_describe('B', features_b)}.{tie_note}"
        )
        return JudgeVerdict(
            winner=winner,
            confidence=round(confidence, 4),
            justification=justification,
            model=self.model,
            latency_ms=(time.perf_counter() - started) * 1000,
            prompt_tokens=None,
            completion_tokens=None,
            cost_usd=None,
            raw_reply=justification,
        )

    async def aclose(self) -> None:
        return None
