"""deepsquare.runtime: runners over inference runtimes and latency measurement.

Never imports torch: it must run where only numpy and an inference runtime exist.
"""
