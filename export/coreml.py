"""Core ML: an ML Program with an ``ImageType`` input and a classifier head (coremltools); what can be checked
of it without macOS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from deepsquare.runtime.bundle import BundleMeta
from deepsquare.runtime.formats import FORMATS

from .needs import need


class ImageInputHead(nn.Module):
    """Core ML's ImageType gives one scale and per-channel biases, but training divided by
    a per-channel std: so the image arrives as RGB in [0, 1] and (x - mean) / std happens
    here, in the graph; softmax on top so Vision reports probabilities."""

    def __init__(self, model: nn.Module, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("inv_std", 1.0 / torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, image: Tensor) -> Tensor:
        return torch.softmax(self.model((image - self.mean) * self.inv_std), dim=1)


def convert_coreml(
    model: nn.Module, example: Tensor, folder: Path, meta: BundleMeta, precision: str = "fp16", **_: Any
) -> dict[str, Any]:
    ct = need("coremltools", "coreml")
    path = folder / FORMATS["coreml"].file
    wrapped = ImageInputHead(model, meta.mean, meta.std).eval()
    image = torch.rand(1, 3, meta.input_size, meta.input_size)
    image_type = ct.ImageType(
        name="image", shape=image.shape, scale=1 / 255.0, bias=[0.0, 0.0, 0.0], color_layout=ct.colorlayout.RGB
    )
    program = torch.export.export(wrapped, (image,)).run_decompositions({})
    mlmodel = ct.convert(
        program,
        inputs=[image_type],
        classifier_config=ct.ClassifierConfig(list(meta.classes), predicted_feature_name="classLabel"),
        convert_to="mlprogram",
        minimum_deployment_target=ct.target.iOS16,
        compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32,
    )
    mlmodel.user_defined_metadata.update(meta.flat_metadata())
    mlmodel.short_description = f"deepsquare {meta.arch} {meta.variant}"
    mlmodel.save(str(path))
    return {"file": path.name, "precision": precision, **coreml_structure(path, meta)}


FLOAT16 = 10  # coremltools.proto.MIL_pb2.DataType.FLOAT16


def coreml_structure(path: Path, meta: BundleMeta) -> dict[str, Any]:
    """What can be checked of a Core ML program without macOS."""
    ct = need("coremltools", "coreml")
    spec = ct.utils.load_spec(str(path))
    inputs = {i.name: i for i in spec.description.input}
    image = inputs.get("image")
    labels = (
        list(spec.neuralNetworkClassifier.stringClassLabels.vector) if spec.HasField("neuralNetworkClassifier") else []
    )
    ops: list[str] = []
    fp16_tensors = 0
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            ops += [op.type for op in block.operations]
            fp16_tensors += sum(
                out.type.tensorType.dataType == FLOAT16 for op in block.operations for out in op.outputs
            )
    classifier_labels = _program_labels(spec) or labels
    problems = []
    if image is None or image.type.WhichOneof("Type") != "imageType":
        problems.append("no image input named 'image'")
    elif (image.type.imageType.width, image.type.imageType.height) != (meta.input_size, meta.input_size):
        problems.append(f"image input is {image.type.imageType.width}x{image.type.imageType.height}")
    if classifier_labels != list(meta.classes):
        problems.append("classifier labels differ from the class names")
    training_only = sorted({op for op in ops if op in {"dropout", "batch_norm"}})
    if training_only:
        problems.append(f"training-only ops in the program: {training_only}")
    missing_meta = [k for k in meta.flat_metadata() if k not in spec.description.metadata.userDefined]
    if missing_meta:
        problems.append(f"metadata keys missing: {missing_meta}")
    return {
        "spec_version": spec.specificationVersion,
        "outputs": [o.name for o in spec.description.output],
        "op_types": sorted(set(ops)),
        "classifier_labels": len(classifier_labels),
        "fp16_tensors": fp16_tensors,  # > 0: the program computes in float16 (what the Neural Engine runs)
        "structure_problems": problems,
    }


def _program_labels(spec: Any) -> list[str]:
    # ML Programs keep the classifier labels in the classify op's 'classes' argument.
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            for op in block.operations:
                if op.type == "classify":
                    items = op.inputs["classes"].arguments[0].value.immediateValue.list.values
                    return [s for item in items for s in item.immediateValue.tensor.strings.values]
    return []
