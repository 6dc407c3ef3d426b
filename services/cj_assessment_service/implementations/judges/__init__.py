"""Judges behind the ``Judge`` protocol of ``cj_core_logic.judging``.

``openai`` (any OpenAI-compatible chat API) and ``anthropic`` are assessors; ``heuristic``
(text features, offline) and ``simulated`` (known true scores) are not, and say so via
``is_assessor = False``. Use ``factory.build_judge(settings)`` to get one.
"""

from services.cj_assessment_service.implementations.judges.factory import build_judge, merge_judge_settings

__all__ = ["build_judge", "merge_judge_settings"]
