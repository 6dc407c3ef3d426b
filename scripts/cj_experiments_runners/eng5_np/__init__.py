"""The ENG5 NP batch runner: register anchors, run CJ batches and report, over HTTP."""

__version__ = "1.0.0"
