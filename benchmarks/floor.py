"""The codec floor: PyAV decode + encode of unmodified frames, with keyer's encoder settings."""
from __future__ import annotations

import sys
import time
from fractions import Fraction

import av

from keyer.encode import FORMATS


def floor(src: str, out: str, fmt: str) -> float:
    spec = FORMATS[fmt]
    options = dict(spec.presets["fast"])
    if spec.codec == "libvpx-vp9":
        options.update({"crf": str(spec.crf), "b": "0", "row-mt": "1"})
    elif spec.codec == "libx264":
        options.update({"crf": str(spec.crf)})
    t = time.perf_counter()
    with av.open(src) as inp, av.open(out, "w") as o:
        vs = inp.streams.video[0]
        vs.thread_type = "AUTO"
        st = o.add_stream(spec.codec, rate=vs.average_rate or Fraction(24), options=options)
        st.width, st.height, st.pix_fmt = vs.codec_context.width, vs.codec_context.height, spec.pix_fmt
        st.codec_context.thread_count = 2
        n = 0
        for f in inp.decode(vs):
            g = f.reformat(format=spec.pix_fmt)
            g.pts, g.time_base = f.pts, f.time_base
            for p in st.encode(g):
                o.mux(p)
            n += 1
        for p in st.encode(None):
            o.mux(p)
    return n / (time.perf_counter() - t)


if __name__ == "__main__":
    print(floor(sys.argv[1], sys.argv[2], sys.argv[3]))
