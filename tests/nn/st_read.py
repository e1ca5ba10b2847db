#!/usr/bin/python3
"""st_read.py - an independent safetensors reader/writer, written from the format's
specification (https://github.com/huggingface/safetensors#format) with json, struct
and numpy only. Debian has no python3-safetensors; this stands in for it in tests,
so that Basira's C writer is checked by code that shares nothing with it.

    st_read.py FILE            print {"metadata": {...}, "tensors": {name: {dtype,
                               shape, sum, first}}} as JSON (checks the file strictly)

As a module: read(path) -> (tensors: dict name -> numpy array, metadata: dict),
write(path, tensors, metadata) writes what the reference writer would.
"""
import json
import struct
import sys

import numpy as np

DTYPES = {
    "BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "I16": np.int16, "U16": np.uint16,
    "F16": np.float16, "I32": np.int32, "U32": np.uint32, "F32": np.float32,
    "F64": np.float64, "I64": np.int64, "U64": np.uint64,
}


def read(path):
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        raise ValueError("file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", buf[:8])
    if n > 100_000_000 or 8 + n > len(buf):
        raise ValueError("bad header length %d" % n)
    header_bytes = buf[8:8 + n]
    if header_bytes[:1] != b"{":
        raise ValueError("header does not start with '{'")
    header = json.loads(header_bytes.decode("utf-8"))
    data = buf[8 + n:]
    metadata = header.pop("__metadata__", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise ValueError("metadata values must be strings")
    entries = sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"]))
    pos = 0
    tensors = {}
    for name, info in entries:
        if set(info) != {"dtype", "shape", "data_offsets"}:
            raise ValueError("%s: bad keys %s" % (name, sorted(info)))
        begin, end = info["data_offsets"]
        if not 0 <= begin <= end <= len(data):
            raise ValueError("%s: offsets out of range" % name)
        if begin != pos:
            raise ValueError("%s: offsets not contiguous (%d != %d)" % (name, begin, pos))
        if info["dtype"] == "BF16":
            raw = np.frombuffer(data[begin:end], dtype="<u2").astype(np.uint32) << 16
            arr = raw.view(np.float32)
        else:
            dt = np.dtype(DTYPES[info["dtype"]]).newbyteorder("<")
            arr = np.frombuffer(data[begin:end], dtype=dt)
        count = int(np.prod(info["shape"], dtype=np.int64))
        if arr.size != count:
            raise ValueError("%s: size does not match shape" % name)
        tensors[name] = arr.reshape(info["shape"])
        pos = end
    if pos != len(data):
        raise ValueError("%d trailing bytes" % (len(data) - pos))
    return tensors, metadata


def write(path, tensors, metadata=None, dtype="F32"):
    """Write float tensors as the reference writer does (sorted by name, 8-byte padded
    header). dtype: F32, F16 or BF16 (BF16 by truncation, which is exact for values
    that are already bfloat16)."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    off = 0
    for name in sorted(tensors):
        a = np.array(tensors[name], dtype=np.float32, order="C")  # keeps 0-d shapes
        if dtype == "F32":
            b = a.astype("<f4").tobytes()
        elif dtype == "F16":
            b = a.astype("<f2").tobytes()
        elif dtype == "BF16":
            b = (a.view(np.uint32) >> 16).astype("<u2").tobytes()
        else:
            raise ValueError(dtype)
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    tensors, metadata = read(sys.argv[1])
    out = {"metadata": metadata, "tensors": {}}
    for name, a in tensors.items():
        flat = a.astype(np.float64).ravel()
        out["tensors"][name] = {
            "shape": list(a.shape),
            "sum": float(flat.sum()),
            "first": float(flat[0]) if flat.size else None,
        }
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
