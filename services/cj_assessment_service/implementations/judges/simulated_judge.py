"""Simulated judge for tests and benchmarks: known true scores, Bradley–Terry noise, optional position bias.

For a request showing essay A first and B second:

    P(A wins) = sigmoid((s_A - s_B) / noise_scale + position_bias)

so ``noise_scale`` is the logistic scale of the judge's error (larger = noisier; the
fitted BT scale comes out as true scores / noise_scale) and ``position_bias`` is a logit
added in favour of whichever essay is shown first (0 = none).

Randomness. Each draw is derived from a hash of (seed, ref shown first, ref shown
second, how many times this ordered pair was asked before) instead of one shared RNG
stream. With a shared stream, the outcome of a comparison would depend on which of the
concurrent requests happened to reach the judge first; with per-pair counters, a given
set of requests gets the same answers whatever the interleaving. The counter advances
before any ``await``, so the assignment is fixed at call time.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections import Counter
from collections.abc import Mapping

from services.cj_assessment_service.cj_core_logic.judging import JudgeCallError, JudgeRequest, JudgeVerdict


def _uniform_from_hash(*parts: object) -> float:
    """A deterministic number in [0, 1) from the given parts (64 bits of SHA-256)."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class SimulatedJudge:
    name = "simulated"
    is_assessor = False

    def __init__(
        self,
        true_scores: Mapping[str, float],
        *,
        noise_scale: float = 1.0,
        position_bias: float = 0.0,
        seed: int = 0,
        latency_ms: float = 0.0,
    ) -> None:
        if noise_scale <= 0:
            raise ValueError("noise_scale must be positive")
        self._true_scores = dict(true_scores)
        self.noise_scale = noise_scale
        self.position_bias = position_bias
        self.seed = seed
        self.latency_ms = latency_ms
        self.model = f"simulated-bt(noise_scale={noise_scale:g}, position_bias={position_bias:g})"
        self._times_asked: Counter[tuple[str, str]] = Counter()

    def probability_first_wins(self, ref_a: str, ref_b: str) -> float:
        logit = (self._score(ref_a) - self._score(ref_b)) / self.noise_scale + self.position_bias
        return 1.0 / (1.0 + math.exp(-logit))

    def _score(self, ref: str) -> float:
        try:
            return self._true_scores[ref]
        except KeyError:
            raise JudgeCallError(
                "unknown_ref",
                f"the simulated judge has no true score for essay ref {ref!r} "
                f"({len(self._true_scores)} refs configured)",
            ) from None

    async def judge(self, request: JudgeRequest) -> JudgeVerdict:
        ref_a, ref_b = request.essay_a.ref, request.essay_b.ref
        p_first = self.probability_first_wins(ref_a, ref_b)  # validates both refs before anything else
        occurrence = self._times_asked[(ref_a, ref_b)]
        self._times_asked[(ref_a, ref_b)] += 1
        draw = _uniform_from_hash(self.seed, ref_a, ref_b, occurrence)
        started = time.perf_counter()
        if self.latency_ms > 0:
            await asyncio.sleep(self.latency_ms / 1000)
        winner = "A" if draw < p_first else "B"
        confidence = p_first if winner == "A" else 1.0 - p_first
        justification = f"Simulated judgement (not an assessment): P(first shown wins) = {p_first:.3f}."
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
