"""deepsquare.export: deploy transform, exporters per format, parity gate, and the main job.

May import deepsquare.train and deepsquare.runtime (never the other way round).
"""
