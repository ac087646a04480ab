"""GSM-8K evaluation: predictions, metrics with confidence intervals, a failure taxonomy, reports."""
