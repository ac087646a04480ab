"""`rate_equation`: rate x time = amount problems. Same ops as arithmetic; a separate expert so that
routing (and evaluation by expert) can tell the families apart."""

from . import Expert, register
from .base import COMPUTE_IDENTITIES, COMPUTE_OPS, CORE_HANDLERS

EXPERT = register(Expert("rate_equation", "rates, speeds, prices per unit and times; same ops as arithmetic",
                         dict(CORE_HANDLERS), {"compute": COMPUTE_OPS},
                         COMPUTE_IDENTITIES))
