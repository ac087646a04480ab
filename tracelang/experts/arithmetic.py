"""`arithmetic`: quantities combined by the compute ops."""

from . import Expert, register
from .base import COMPUTE_IDENTITIES, COMPUTE_OPS, CORE_HANDLERS

EXPERT = register(Expert("arithmetic", "init numbers, combine them with compute, query the answer",
                         dict(CORE_HANDLERS), {"compute": COMPUTE_OPS},
                         COMPUTE_IDENTITIES))
