"""Build the judge a batch asked for from validated ``JudgeSettings``."""

from __future__ import annotations

from services.cj_assessment_service.cj_core_logic.judging import Judge, JudgeSettings, merge_judge_settings
from services.cj_assessment_service.implementations.judges.heuristic_judge import HeuristicJudge
from services.cj_assessment_service.implementations.judges.simulated_judge import SimulatedJudge

__all__ = ["JudgeSettings", "build_judge", "merge_judge_settings"]


def build_judge(settings: JudgeSettings) -> Judge:
    """A ready judge. LLM judges own an HTTP connection pool: call ``await judge.aclose()`` when done."""
    if settings.kind == "heuristic":
        return HeuristicJudge()
    if settings.kind == "simulated":
        assert settings.true_scores is not None, "JudgeSettings guarantees true_scores for 'simulated'"
        return SimulatedJudge(
            settings.true_scores,
            noise_scale=settings.noise_scale,
            position_bias=settings.position_bias,
            seed=settings.seed,
            latency_ms=settings.latency_ms,
        )
    # The SDKs are imported only when an LLM judge is wanted.
    if settings.kind == "openai":
        from services.cj_assessment_service.implementations.judges.openai_judge import OpenAIJudge

        return OpenAIJudge(settings)
    if settings.kind == "anthropic":
        from services.cj_assessment_service.implementations.judges.anthropic_judge import AnthropicJudge

        return AnthropicJudge(settings)
    raise ValueError(f"unknown judge kind {settings.kind!r}")
