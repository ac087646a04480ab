"""The data layer: GSM-8K loading, the annotation-to-trace importer, variable naming, splits and the
contamination guard. Reading quantities in question text (grounding) is core: ``tracelang.grounding``.
"""
