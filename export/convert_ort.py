"""``--to ort``: ONNX Runtime's mobile format (``model.ort``) and the required-operators configuration a reduced ORT
build needs for it (``model.required_operators.config``), both written by onnxruntime's own conversion tool
(``onnxruntime.tools.convert_onnx_models_to_ort``, optimization style "Fixed").

The graph is the mobile one: exported with a fixed shape (batch 1: the mobile execution providers take no dynamic
dimension), simplified, in the deploy form the ``ort`` format asks of each layer (``SquareNet.for_format("ort")``:
ShuffleNetV2's channel shuffle as reshape-transpose-reshape, which Core ML's MLProgram EP takes and a ``Gather`` it
does not). ONNX Runtime's mobile usability checker is run on that ONNX graph before conversion: its partitions for
NNAPI and Core ML go into the format's report (``delegation.mobile``).
"""

from __future__ import annotations

import pathlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from deepsquare.runtime.bundle import BundleMeta
from deepsquare.runtime.formats import FORMATS

from .converters import converter
from .needs import need

CONFIG_SUFFIX = ".required_operators.config"  # onnxruntime's own name for it, beside model.ort


def config_name(model_file: str) -> str:
    """``model.ort`` -> ``model.required_operators.config``."""
    return Path(model_file).with_suffix(CONFIG_SUFFIX).name


@converter("ort")
def export_ort(
    model: nn.Module, example: Tensor, folder: Path, meta: BundleMeta, precision: str = "fp32", **_: Any
) -> dict[str, Any]:
    onnx = need("onnx", "onnx")
    need("onnxscript", "onnx")
    onnxsim = need("onnxsim", "onnx")
    need("onnxruntime", "onnx")
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    from .delegation_ort import mobile_partitions

    fmt = FORMATS["ort"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        program = torch.onnx.export(
            model.eval(),
            (example[:1].contiguous(),),  # fixed shapes: batch 1
            dynamo=True,
            external_data=False,
            input_names=[fmt.input_name],
            output_names=[fmt.output_name],
            verbose=False,
        )
        program.save(str(work / "raw.onnx"))
        graph = onnx.load(str(work / "raw.onnx"))
        simplified, ok = onnxsim.simplify(graph)
        graph = simplified if ok else graph
        del graph.metadata_props[:]
        for key, value in meta.flat_metadata().items():
            graph.metadata_props.add(key=key, value=value)
        onnx.checker.check_model(graph)
        fixed = work / "model.onnx"
        onnx.save(graph, str(fixed))
        mobile = mobile_partitions(fixed)
        convert_onnx_models_to_ort(
            pathlib.Path(fixed), output_dir=pathlib.Path(work / "ort"), optimization_styles=[OptimizationStyle.Fixed]
        )
        shutil.move(work / "ort" / "model.ort", folder / fmt.file)
        shutil.move(work / "ort" / config_name("model.ort"), folder / config_name(fmt.file))
    required = [line for line in (folder / config_name(fmt.file)).read_text().splitlines() if not line.startswith("#")]
    return {
        "file": fmt.file,
        "precision": precision,
        "required_operators": config_name(fmt.file),
        "required_operator_lines": required,
        "input_shape": [1, *example.shape[1:]],
        "onnx_nodes": len(graph.graph.node),
        "op_types": sorted({n.op_type for n in graph.graph.node}),
        "delegation": {"mobile": mobile},
    }
