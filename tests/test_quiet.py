"""Converter chatter is hidden per call and the process is left exactly as it was."""

import logging
import os
import sys
import warnings

from deepsquare.runtime.quiet import CHATTY_LOGGERS, quiet


def test_quiet_hides_python_and_file_descriptor_output_and_restores_everything(capfd) -> None:
    filters_before = list(warnings.filters)
    levels_before = {name: logging.getLogger(name).level for name in CHATTY_LOGGERS}
    with quiet() as captured:
        print("python stdout")
        print("python stderr", file=sys.stderr)
        os.write(1, b"C++ stdout\n")
        os.write(2, b"C++ stderr\n")  # what TFLite's "Created XNNPACK delegate" is
        warnings.warn("a converter's deprecation", DeprecationWarning, stacklevel=1)
        logging.getLogger("absl").warning("absl note")
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert all(text in captured.text for text in ("python stdout", "python stderr", "C++ stdout", "C++ stderr"))
    assert warnings.filters == filters_before
    assert {name: logging.getLogger(name).level for name in CHATTY_LOGGERS} == levels_before
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"  # the descriptors are back


def test_verbose_shows_the_output(capfd) -> None:
    with quiet(verbose=True):
        os.write(2, b"shown\n")
    assert capfd.readouterr().err == "shown\n"
