"""tracelang: a language of symbolic math traces, with an exact runtime.

    >>> from tracelang import analyze
    >>> analyze(text).answer
"""

from .formatter import format_program
from .ir import Program
from .numbers import render
from .pipeline import Report, analyze, parse

__all__ = ["Program", "Report", "analyze", "format_program", "parse", "render"]
__version__ = "0.1.0"
