"""lm-eval's own command line with the ``tracelang`` model registered:
``python -m tracelang.integrations.lm_eval_run run --model tracelang --model_args model=shipped ...``
takes every argument ``lm_eval`` takes. lm-eval 0.4.13 finds models only among its own modules;
the versions that discover ``lm_eval.models`` entry points (declared in pyproject.toml) need none of
this: ``lm_eval run --model tracelang ...`` (or ``--plugins tracelang.integrations.lm_eval_model``)."""

from __future__ import annotations

from . import lm_eval_model  # noqa: F401  (its @register_model puts `tracelang` in lm-eval's registry)


def main() -> None:
    from lm_eval.__main__ import cli_evaluate

    cli_evaluate()


if __name__ == "__main__":
    main()
