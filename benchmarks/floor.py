"""The codec floor: PyAV decode + encode of unmodified frames, with keyer's encoder settings.

``python benchmarks/floor.py SRC OUT FMT`` prints one JSON line: ``frames``, ``fps`` (from opening
the input to the last packet), and the moment the first frame went into the encoder (where keyer
logs ``first_frame``) as ``first_frame_time`` (epoch seconds, for the bench's clock) and
``since_process_start_s``.
"""
from __future__ import annotations

import json
import sys
import time
from fractions import Fraction

import av

from keyer.clock import since_process_start
from keyer.formats import FORMATS, encoder_options   # not keyer.encode: no numpy, no Numba


def encoder_stream(o, vs, spec, threads: int = 2):
    """``o``'s video stream encoding ``vs``'s frames as ``spec`` does, on ``threads`` threads
    (``vs`` is set to decode with FFmpeg's frame threads, as keyer's decoder does)."""
    vs.thread_type = "AUTO"
    st = o.add_stream(spec.codec, rate=vs.average_rate or Fraction(24), options=encoder_options(spec))
    st.width, st.height, st.pix_fmt = vs.codec_context.width, vs.codec_context.height, spec.pix_fmt
    st.codec_context.thread_count = threads
    return st


def floor(src: str, out: str, fmt: str) -> dict:
    """Decode ``src`` and encode every frame unchanged to ``out``; frames, fps, first-frame times."""
    spec = FORMATS[fmt]
    first: dict = {}
    t = time.perf_counter()
    with av.open(src) as inp, av.open(out, "w") as o:
        vs = inp.streams.video[0]
        st = encoder_stream(o, vs, spec)
        n = 0
        for f in inp.decode(vs):
            g = f.reformat(format=spec.pix_fmt)
            g.pts, g.time_base = f.pts, f.time_base
            for p in st.encode(g):
                o.mux(p)
            n += 1
            if n == 1:
                first = {"first_frame_time": time.time(), "since_process_start_s": since_process_start()}
        for p in st.encode(None):
            o.mux(p)
    return {"frames": n, "fps": n / (time.perf_counter() - t), **first}


if __name__ == "__main__":
    print(json.dumps(floor(sys.argv[1], sys.argv[2], sys.argv[3])))
