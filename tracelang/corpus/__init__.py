"""Training corpora: templates written for tracelang and GSM-8K train problems with lifted numbers,
turned into verified records (``spec/templates.md``).

Data flows one way: ``library`` loads pools and templates (``pools``, ``template``, ``expr``,
``text``, ``skeleton``) -> ``compose`` samples chains of templates and renders their questions, or
``lift`` resamples an imported train problem -> ``verify`` gates each record -> ``generate`` drops
duplicates and contaminated records and streams the rest to an atomic write (``commands``).
``lint`` checks templates; ``stats`` and ``shapes`` measure corpora.
"""
