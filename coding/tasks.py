"""Background work of the Reflect stage, run by the job mechanism (workshops/jobs.py).

`run_summary` is the `summary` job kind (registered in CodingConfig.ready): it reads the
workshop's data, reports progress (a heartbeat too) and returns the summary as the job result.
"""

from __future__ import annotations


def run_summary(job, report) -> dict:
    """Compute the group summary for a claimed Job row."""
    from coding import selectors, summary

    report(5)
    inputs = selectors.summary_inputs(job.workshop)
    return summary.build(inputs, progress=report)
