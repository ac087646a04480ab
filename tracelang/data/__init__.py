"""The data layer: GSM-8K loading, quantities in question text, the annotation-to-trace importer,
splits, the contamination guard, and the record schema every tool shares.

The constrained decoder and the checker's grounding use ``allowed_values`` and ``grounder_for``;
``stated_values`` (also ``grounder_for(q).stated``) exempts the question's own quantities from E401.
"""

from .quantities import Quantity, allowed_values, constants_for, extract, grounder_for, stated_values

__all__ = ["Quantity", "allowed_values", "constants_for", "extract", "grounder_for", "stated_values"]
