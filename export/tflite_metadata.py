"""TFLite flatbuffer helpers: op lists and named metadata buffers (the bundle JSON, the labels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def tflite_op_names(path_or_bytes: str | Path | bytes) -> list[str]:
    """Builtin op names of every operator in a .tflite file, in graph order."""
    from ai_edge_litert import schema_py_generated as schema

    buf = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
    model = schema.Model.GetRootAsModel(buf, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        codes.append(names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM"))
    ops = []
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        ops += [codes[subgraph.Operators(i).OpcodeIndex()] for i in range(subgraph.OperatorsLength())]
    return ops


def tflite_metadata(path: str | Path) -> dict[str, bytes]:
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(Path(path).read_bytes(), 0)
    out = {}
    for entry in model.metadata or []:
        name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
        out[name] = bytes(model.buffers[entry.buffer].data)
    return out


def add_tflite_metadata(buf: bytes, entries: dict[str, bytes]) -> bytes:
    """Add named metadata buffers (the bundle JSON and the labels) to a TFLite flatbuffer."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(buf, 0)
    for buffer in model.buffers or []:
        # Converters (ai-edge-quantizer's int8 output among them) may store a constant after the flatbuffer,
        # addressed by file offset and size. A repack writes a new flatbuffer whose tail is gone, so such
        # buffers are brought inside first: same bytes, now in `data`.
        if buffer.offset > 1:
            buffer.data = np.frombuffer(buf[buffer.offset : buffer.offset + buffer.size], dtype=np.uint8)
            buffer.offset, buffer.size = 0, 0
    model.metadata = list(model.metadata or [])
    for name, data in entries.items():
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(data, dtype=np.uint8)
        model.buffers.append(buffer)
        item = schema.MetadataT()
        item.name = name
        item.buffer = len(model.buffers) - 1
        model.metadata.append(item)
    builder = flatbuffers.Builder(len(buf) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
