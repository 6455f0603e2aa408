"""Transitional: the atomic writer lives in :mod:`deepsquare.runtime.files` (torch-free, so train imports it).

Only ``train/ablate.py`` still imports it from here; once it imports ``deepsquare.runtime.files``, delete
this module.
"""

from deepsquare.runtime.files import copy_atomically, write_atomically, write_text_atomically

__all__ = ["copy_atomically", "write_atomically", "write_text_atomically"]
