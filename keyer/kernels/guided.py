"""The ratio's kernels between the colour pass and the matte: the local foreground scale and the
solid tolerance (``foreground_scale``), then the guided filter (He & Sun; box sums with OpenCV's
reflected borders, row by row).

Both key paths run them on the ratio at chroma resolution (half size on the RGBA path; see
``keyer.keying._KeyBase``): ``foreground_scale`` unmixes the ratio near the screen with the
foreground beside it whose colour the sample's lies on the way to, and applies the solid
tolerance; ``guided_fit`` fits the local linear model of the ratio by the luma guide (its
coefficients are used as they are, not box-averaged again); on that model
``luma_evidence`` keeps the faint coverage luma confirms and gathers the evidence of shade
with which ``drop_shadows`` keys a wide shade of the screen as screen (below; the rules'
Python side is ``keyer.evidence``). Nothing is allocated per call: buffers come in ``cells``,
``picks``, ``scratch``, ``buf`` and ``evidence``.

Faint coverage: the ramp's start (``--similarity``) cuts the faint end of every matte, because
at chroma resolution the screen's noise and the plate's small errors look like faint coverage.
Smoke, strand tips and the tails of motion blur are faint coverage too, and the start took the
same share off them. Luma tells them apart: where a sample's luma differs from the clean
plate's there by more than the screen's own noise (``screen_noise`` measures it), in a way no
shadow gives, and its coverage is over the noise too, the model keys its coverage as it is.

Shadows: a shade of the screen is the screen mixed with black, and its colour difference reads
as coverage. Its luma has fallen by exactly its coverage times the plate's; where the samples
around it hold as much such evidence (a box of ~18 px), it is a shadow, not a dark strand or the
edge of a black subject, and the model keys it as screen.
"""
from __future__ import annotations

import numpy as np

from keyer._jit import kernel, kernel_parallel, prange

SPAN = 32   # samples the faint-coverage rule scans at once for any faint one


@kernel
def _solid(q, solid):
    """The ratio with the solid tolerance, ``solid`` = (q1, slope, q_op, q_floor): ratios up to
    ``q1`` move down to ``q_op`` (where the ramp gives alpha 1) and below, no lower than
    ``q_floor``; those from ``q1`` rise back to themselves with ``slope``; higher ones are
    kept. The floor keeps a strongly negative foreground ratio (a saturated colour opposite
    the screen's) from pulling the guided filter's edge out into a halo. Branch-free."""
    q1, slope, q_op, q_floor = solid
    return max(min(q, max(q_op + (q - q1) * slope, q - (q1 - q_op))), q_floor)


@kernel
def _unmixed(x, t, kx, kt, ks, n, near):
    """The coverage of a sample at ``(x, t)`` (``1 - q`` and its tint; both scale with coverage
    along a mix with the screen, and every neutral colour is at (1, 0)) unmixed with the
    ``n`` candidate foregrounds ``(kx, kt)`` around it (``ks``: the slope ``kt / kx`` of each
    one's direction; all more opposed to the screen than neutral, ``kx`` > 1).

    The candidate is the most opaque (largest ``kx``) of those whose direction is within
    ``near`` (the tangent of the angle) of the sample's own (a mix lies on its foreground's ray
    from the screen, nearer the screen), else the nearest in direction. The sample is then
    split between that foreground K and neutral N, ``P = k K + m N`` (``k`` from the tint, no
    lower than 0 and no higher than K alone), and its coverage is ``k + m``: on K's ray ``x /
    x_K``, on neutral's ray ``x`` (the ratio unchanged)."""
    zero = np.float32(0.0)
    one = np.float32(1.0)
    if x <= zero or n == 0:
        return x
    own = t / x
    best = np.float32(1e30)
    bx = one
    bt = zero
    for c in range(n):
        s = ks[c]
        cos = one + own * s   # tan(angle between) = |own - s| / (1 + own * s)
        tan = abs(own - s) / cos if cos > zero else np.float32(1e20)
        rank = -kx[c] if tan < near else tan + np.float32(10.0)
        if rank < best:
            best = rank
            bx = kx[c]
            bt = kt[c]
    alone = x / bx
    k = t / bt if abs(bt) > np.float32(1e-3) else alone
    k = min(max(k, zero), alone)
    return x - k * (bx - one)


@kernel
def _candidates(q, tint, lo, a, b, kx, kt, ks):
    """The candidate foregrounds around cell ``(a, b)``: of each cell of the 3x3 whose lowest
    ratio ``lo`` is under 0, that sample's ``1 - q``, tint and slope, into ``kx``, ``kt``,
    ``ks`` (9 each). Returns how many."""
    h, w = q.shape
    ch, cw = lo.shape
    n = 0
    for i in range(max(a - 1, 0), min(a + 2, ch)):
        for j in range(max(b - 1, 0), min(b + 2, cw)):
            m = lo[i, j]
            if m < np.float32(0.0):
                t = np.float32(0.0)
                for y in range(min(2 * i + 1, h - 1), 2 * i - 1, -1):
                    for x in range(min(2 * j + 1, w - 1), 2 * j - 1, -1):
                        if q[y, x] == m:
                            t = tint[y, x]
                kx[n] = np.float32(1.0) - m
                kt[n] = t
                ks[n] = t / kx[n]
                n += 1
    return n


@kernel_parallel
def foreground_scale(q, tint, solid, limits, cells, pre, picks):
    """In place on the ratio ``q`` (1 on the screen, 0 on a neutral foreground): near the
    screen, unmix it with the foreground beside it (``_unmixed``), then apply the solid
    tolerance (``_solid``, ``solid`` as it takes it).

    An edge pixel mixes the screen with the foreground beside it, ``q = 1 - c * (1 - q_f)``:
    a foreground more opposed to the screen than neutral (``q_f`` < 0: red on blue) makes the
    coverage ``c`` look larger, an edge too opaque (a halo). ``tint`` is a second colour
    difference, linear in the mix like ``1 - q`` and 0 on every neutral colour, so that each
    foreground lies on its own ray from the screen in (``1 - q``, ``tint``): a sample is
    unmixed with the candidate whose ray it is on (a neutral colour beside a red suit, or a
    veil, is not on the suit's ray: it keeps its ratio). Candidates: per cell of 2x2 samples,
    its sample of lowest ratio; a sample looks at the 3x3 cells around its own (6x6 samples,
    12 px on the planar path), and only where some sample there is confidently screen (over
    ``screen_min``); the interior far from the screen is left alone.

    ``limits`` = (screen_min, q_opaque, near): ``near`` the tangent of the angle within which
    a sample counts as on a candidate's ray. ``pre`` (cells' shape, uint8) gets the core
    matte's mask *before* the unmixing: 1 where a cell is not confidently opaque (some
    sample's ratio, with the solid tolerance, over ``q_opaque``), so that a thin ring of
    subject between a screen-coloured detail and the edge, which unmixes partly transparent,
    still closes the detail off (``keyer.kernels.core.coarse_mask`` ands it in). ``cells``
    (6, (h + 1) // 2, (w + 1) // 2) float32: per cell the lowest ratio, the lowest and
    highest ratio of its row of 3 cells, whether to unmix there, and two planes; then the
    unmixed ratios of its 4 samples (in the two row-of-3 planes and the other two), written
    back once all are made (a sample's candidates are read from the ratio as it was).
    ``picks`` (cell rows, 3, 9) float32: each row's candidates, as ``_candidates`` gives them.
    Each pass is a loop over contiguous rows, in threads by rows."""
    screen_min, q_opaque, near = limits
    h, w = q.shape
    ch, cw = cells.shape[1], cells.shape[2]
    lo, rlo, rhi, act = cells[0], cells[1], cells[2], cells[3]
    out = (cells[1], cells[2], cells[4], cells[5])   # free once ``act`` is made
    zero = np.float32(0.0)
    one = np.float32(1.0)
    for a in prange(ch):
        # per cell: the lowest ratio and the highest (in ``act``'s row until the next pass);
        # then the lowest and highest of each row of 3 cells
        i1 = min(2 * a + 1, h - 1)
        ha = act[a]
        _cell_row(q[2 * a], q[i1], lo[a], ha)
        pa = pre[a]
        for b in range(cw):
            pa[b] = np.uint8(1) if _solid(ha[b], solid) > q_opaque else np.uint8(0)
        _three(lo[a], ha, rlo[a], rhi[a])
    for a in prange(ch):   # unmix where the 3 x 3 cells hold a candidate and the screen
        l0, l1, l2 = rlo[max(a - 1, 0)], rlo[a], rlo[min(a + 1, ch - 1)]
        h0, h1, h2 = rhi[max(a - 1, 0)], rhi[a], rhi[min(a + 1, ch - 1)]
        aa = act[a]
        for b in range(cw):
            low = min(min(l0[b], l1[b]), l2[b])
            high = max(max(h0[b], h1[b]), h2[b])
            aa[b] = one if (low < zero) & (high > screen_min) else zero
    for a in prange(ch):   # unmix the samples of those cells into 4 free planes
        aa = act[a]
        if _busy(aa):
            kx, kt, ks = picks[a, 0], picks[a, 1], picks[a, 2]
            for b in range(cw):
                if aa[b] != zero:
                    n = _candidates(q, tint, lo, a, b, kx, kt, ks)
                    for k in range(4):
                        i = min(2 * a + k // 2, h - 1)
                        j = min(2 * b + k % 2, w - 1)
                        out[k][a, b] = one - _unmixed(one - q[i, j], tint[i, j], kx, kt, ks,
                                                      n, near)
    for a in prange(ch):   # then into the ratio, and the solid tolerance
        aa = act[a]
        busy = _busy(aa)
        for i in range(2 * a, min(2 * a + 2, h)):
            qr = q[i]
            if busy:
                k0 = 2 * (i - 2 * a)
                for b in range(cw):
                    if aa[b] != zero:
                        qr[2 * b] = out[k0][a, b]
                        if 2 * b + 1 < w:
                            qr[2 * b + 1] = out[k0 + 1][a, b]
            for j in range(w):
                qr[j] = _solid(qr[j], solid)


@kernel
def _busy(row):
    """Whether any of ``row`` is not 0 (a max: it vectorises)."""
    m = np.float32(0.0)
    for b in range(row.shape[0]):
        m = max(m, abs(row[b]))
    return m != np.float32(0.0)


@kernel
def _three(lo, hi, rlo, rhi):
    """``rlo[b]`` = the lowest of ``lo[b - 1 .. b + 1]``, ``rhi[b]`` the highest of ``hi``'s
    (the row's ends take what they have); the inner loops vectorise."""
    cw = lo.shape[0]
    rlo[0] = min(lo[0], lo[min(1, cw - 1)])
    rhi[0] = max(hi[0], hi[min(1, cw - 1)])
    rlo[cw - 1] = min(lo[cw - 1], lo[max(cw - 2, 0)])
    rhi[cw - 1] = max(hi[cw - 1], hi[max(cw - 2, 0)])
    for b in range(1, cw - 1):
        rlo[b] = min(min(lo[b - 1], lo[b]), lo[b + 1])
    for b in range(1, cw - 1):
        rhi[b] = max(max(hi[b - 1], hi[b]), hi[b + 1])


@kernel
def _cell_row(q0, q1, lo, hi):
    """One row of cells of 2x2 samples (rows ``q0``/``q1`` of the ratio; an odd last column
    or row pools what it has): each cell's lowest and highest ratio. Vectorises."""
    w = q0.shape[0]
    cw = lo.shape[0]
    for b in range(w // 2):
        lo[b] = min(min(q0[2 * b], q0[2 * b + 1]), min(q1[2 * b], q1[2 * b + 1]))
    for b in range(w // 2):
        hi[b] = max(max(q0[2 * b], q0[2 * b + 1]), max(q1[2 * b], q1[2 * b + 1]))
    if w % 2:
        lo[cw - 1] = min(q0[w - 1], q1[w - 1])
        hi[cw - 1] = max(q0[w - 1], q1[w - 1])


@kernel
def _reflect(i, n):
    """OpenCV's BORDER_REFLECT index (``fedcba|abcdefgh|hgfedcb``), reflected again while a
    reach longer than the line still falls outside it."""
    if n == 1:
        return 0
    while i < 0 or i >= n:
        i = -i - 1 if i < 0 else 2 * n - i - 1
    return i


@kernel
def _box_row(col, r, pad, out, scale):
    """``out[j] = scale * sum(col[j - r .. j + r])``, reflected at the ends, through ``pad``
    (length w + 2r). Every loop indexes from 0 (a run is sliced first): they vectorise."""
    w = col.shape[0]
    inner = pad[r:r + w]
    for j in range(w):
        inner[j] = col[j]
    for k in range(r):
        pad[r - 1 - k] = col[_reflect(-1 - k, w)]
        pad[r + w + k] = col[_reflect(w + k, w)]
    if r == 1:
        for j in range(w):
            out[j] = (pad[j] + pad[j + 1] + pad[j + 2]) * scale
        return
    for j in range(w):
        out[j] = pad[j]
    for k in range(1, 2 * r + 1):
        pk = pad[k:k + w]
        for j in range(w):
            out[j] += pk[j]
    for j in range(w):
        out[j] *= scale


@kernel
def _add_row(acc, row):
    """``acc += row`` (one output per loop: few runtime alias checks, so it vectorises)."""
    for j in range(acc.shape[0]):
        acc[j] += row[j]


@kernel_parallel
def guided_fit(guide, src, r, eps, scratch, a_out, b_out):
    """Per pixel, the guided filter's local linear model of ``src`` by ``guide`` over a
    (2r+1)^2 box (reflected borders): ``a = cov(g, s) / (var(g) + eps)``, ``b = mean(s) -
    a * mean(g)``. One pass: the four box means come from column sums of the rows in reach
    (at r = 1, the default, written straight into padded rows: ``_box3_means``).
    ``scratch`` (chunks, 9, w + 2r) float32: one set of row buffers per chunk of rows (the
    rows are split into that many chunks), so nothing is allocated per call."""
    h, w = guide.shape
    n = np.float32(1.0 / ((2 * r + 1) * (2 * r + 1)))
    nchunk = scratch.shape[0]
    for t in prange(nchunk):
        rows = scratch[t]
        cg = rows[0, :w]
        cs = rows[1, :w]
        cgs = rows[2, :w]
        cgg = rows[3, :w]
        pad = rows[4]
        mg = rows[5, :w]
        ms = rows[6, :w]
        mgs = rows[7, :w]
        mgg = rows[8, :w]
        for i in range(t * h // nchunk, (t + 1) * h // nchunk):
            if r == 1:   # the default: 9 passes over the row where the general way takes 25
                _box3_means(guide, src, i, rows, (mg, ms, mgs, mgg), n)
                _fit_row(mg, ms, mgs, mgg, eps, a_out[i], b_out[i])
                continue
            cg[:] = 0.0
            cs[:] = 0.0
            cgs[:] = 0.0
            cgg[:] = 0.0
            for di in range(-r, r + 1):
                gr = guide[_reflect(i + di, h)]
                sr = src[_reflect(i + di, h)]
                _add_row(cg, gr)
                _add_row(cs, sr)
                for j in range(w):   # one output per loop, as in _add_row
                    cgs[j] += gr[j] * sr[j]
                for j in range(w):
                    cgg[j] += gr[j] * gr[j]
            _box_row(cg, r, pad, mg, n)
            _box_row(cs, r, pad, ms, n)
            _box_row(cgs, r, pad, mgs, n)
            _box_row(cgg, r, pad, mgg, n)
            _fit_row(mg, ms, mgs, mgg, eps, a_out[i], b_out[i])


@kernel
def _fit_row(mg, ms, mgs, mgg, eps, ar, br):
    """One row of the guided filter's model from its four box means."""
    for j in range(ar.shape[0]):
        a = np.true_divide(mgs[j] - mg[j] * ms[j], mgg[j] - mg[j] * mg[j] + eps)
        ar[j] = a
        br[j] = ms[j] - a * mg[j]


@kernel
def _box3_means(guide, src, i, rows, means, n):
    """``guided_fit``'s four box means at row ``i`` for r = 1 into ``means`` (mg, ms, mgs,
    mgg): the column sums of rows i - 1 .. i + 1 written straight into ``rows[0..3]``'s padded
    runs (reflected at the ends, as ``_box_row``), then three of them added. Every loop has
    one output (few runtime alias checks) and indexes from 0: they vectorise."""
    h, w = guide.shape
    g0, g1, g2 = guide[_reflect(i - 1, h)], guide[i], guide[_reflect(i + 1, h)]
    s0, s1, s2 = src[_reflect(i - 1, h)], src[i], src[_reflect(i + 1, h)]
    cg, cs, cgs, cgg = rows[0, 1:w + 1], rows[1, 1:w + 1], rows[2, 1:w + 1], rows[3, 1:w + 1]
    for j in range(w):
        cg[j] = g0[j] + g1[j] + g2[j]
    for j in range(w):
        cs[j] = s0[j] + s1[j] + s2[j]
    for j in range(w):
        cgs[j] = g0[j] * s0[j] + g1[j] * s1[j] + g2[j] * s2[j]
    for j in range(w):
        cgg[j] = g0[j] * g0[j] + g1[j] * g1[j] + g2[j] * g2[j]
    for k in range(4):
        pad = rows[k, :w + 2]
        pad[0] = pad[1]
        pad[w + 1] = pad[w]
        out = means[k]
        for j in range(w):
            out[j] = (pad[j] + pad[j + 1] + pad[j + 2]) * n


@kernel
def _plate_rows(plate, px, cell, i):
    """The two plate rows around model row ``i`` (its centre at ``px`` px per sample) and the
    lower one's weight: bilinear between cell centres, clamped."""
    gh = plate.shape[0]
    gy = (px * i + 0.5 * px) / cell - 0.5
    r0 = int(np.floor(gy))
    fy = np.float32(gy - r0)
    if r0 < 0:
        r0 = 0
        fy = np.float32(0.0)
    r1 = r0 + 1 if r0 + 1 < gh else gh - 1
    return plate[r0], plate[r1], fy


@kernel
def _plate_luma(rows, cols, j):
    """The plate's luma at column ``j`` between the ``rows`` of ``_plate_rows``; ``cols`` =
    (col0, colf) of the model's columns."""
    p0, p1, fy = rows
    col0, colf = cols
    c0 = col0[j]
    c1 = min(c0 + 1, p0.shape[0] - 1)
    fx = colf[j]
    top = p0[c0] + fx * (p0[c1] - p0[c0])
    return top + fy * (p1[c0] + fx * (p1[c1] - p1[c0]) - top)


@kernel
def plate_luma(grid, luma, plate):
    """``plate`` (gh, gw) = the luma of the grid's screen colour (its R, G, B; ``luma`` =
    (Kr, Kg, Kb) / 255, so 0..1 like the guide)."""
    kr, kg, kb = luma
    for a in range(grid.shape[0]):
        for b in range(grid.shape[1]):
            plate[a, b] = kr * grid[a, b, 0] + kg * grid[a, b, 1] + kb * grid[a, b, 2]


@kernel
def _median(x):
    """The (upper) median of ``x``, which is reordered in place: Hoare's selection, written
    out (Numba's sort would load its array library at start-up)."""
    k = x.shape[0] // 2
    lo, hi = 0, x.shape[0] - 1
    while lo < hi:
        pivot = x[(lo + hi) // 2]
        i, j = lo, hi
        while i <= j:
            while x[i] < pivot:
                i += 1
            while x[j] > pivot:
                j -= 1
            if i <= j:
                x[i], x[j] = x[j], x[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    return x[k]


@kernel
def _centre_and_spread(x, scratch):
    """(median, 1.4826 x the median absolute deviation) of ``x`` (reordered in place);
    ``scratch`` as long as ``x``."""
    centre = _median(x)
    for k in range(x.shape[0]):
        scratch[k] = abs(x[k] - centre)
    return centre, np.float32(1.4826) * _median(scratch)


@kernel
def screen_noise(slope, offset, guide, plate, cols, px, cell, screen, step, buf, stats):
    """The screen's noise, on every ``step``-th sample of every ``step``-th row whose coverage
    ``c = 1 - (slope * guide + offset)`` is within ``screen`` of 0 (what the plate counts as
    screen): ``stats`` = (median and robust spread of c, the same of the sample's luma over
    the plate's). ``buf`` (3, n) float32 holds the samples and a scratch row: nothing is
    allocated. Returns how many samples there were (``stats`` is left alone when none)."""
    h, w = slope.shape
    n = 0
    for i in range(step // 2, h, step):
        rows = _plate_rows(plate, px, cell, i)
        for j in range(step // 2, w, step):
            g = guide[i, j]
            c = np.float32(1.0) - (slope[i, j] * g + offset[i, j])
            if abs(c) < screen and n < buf.shape[1]:
                buf[0, n] = c
                buf[1, n] = g - _plate_luma(rows, cols, j)
                n += 1
    if n > 0:
        stats[0], stats[1] = _centre_and_spread(buf[0, :n], buf[2, :n])
        stats[2], stats[3] = _centre_and_spread(buf[1, :n], buf[2, :n])
    return n


@kernel
def _shade(c, g, ys, centre, l0, l_inv):
    """How much a sample of coverage ``c`` and luma ``g`` over a plate of luma ``ys`` looks like
    a shade of the screen (a mix with black: its luma fallen by ``c * ys``, less the screen's
    own offset ``centre``): 1 within ``l0`` of it, 0 from ``3 * l0``."""
    d = abs(g - ys - centre + c * ys)
    return np.float32(1.0) - min(max((d - l0) * l_inv, np.float32(0.0)), np.float32(1.0))


@kernel_parallel
def luma_evidence(slope, offset, guide, where, noise, faint, shade, evidence, rows):
    """Luma's evidence on the model ``q = slope * guide + offset``, per sample, in one pass.
    With its coverage ``c = 1 - q`` at its own luma, ``dy`` its luma over the plate's ``Ys``
    less the screen's own (``centre``), and each ramp 0..1 between its two limits:

    * **faint coverage kept**: the sample's model moves towards ``(k, k0)``, ``q' = k * q +
      k0`` (with which the ramp keys coverage as it is, no start), by the weight ``ramp(c; m0,
      m1) * ramp(min(|dy|, |dy + c * Ys|); l0, 3 * l0) * ramp(-c; -c_end, -c_mid)``. Chroma
      noise and a chroma edge bled by 4:2:0 and the codec leave luma at the screen's (``dy``
      nothing), and a shade of the screen (a mix with black: a shadow) changes it by exactly
      ``-c * Ys``: either is no evidence, and the ramp's start still cuts them; anything else
      in front of the screen changes both. The last factor ends it where the ramp itself keys
      more than coverage (its midpoint with the defaults).
    * **shade evidence**: ``evidence`` = ``c`` where the sample looks like a shade of the
      screen (``_shade``) and ``c`` is a shadow's depth, ramped in over ``s0..s1`` and out over
      ``deep..deepest``; 0 elsewhere, and ``rows[i]`` = 1 where row ``i`` holds any, for
      ``drop_shadows``.

    ``where`` = (plate, cols, px, cell): ``plate`` (gh, gw) the clean plate's luma per cell of
    ``cell`` px (``plate_luma``), ``cols`` = (col0, colf) of the model's columns in cells,
    ``px`` px per sample. ``noise`` = (m0, 1 / (m1 - m0), centre, l0, 1 / (2 * l0)), measured
    on the screen; ``faint`` = (c_end, 1 / (c_end - c_mid), k, k0), c_end 0 when off; ``shade``
    = (s0, 1 / (s1 - s0), deepest, 1 / (deepest - deep)), and ``evidence`` (h, w), or (1, 1)
    when off. Most samples are screen or opaque: spans of ``SPAN`` of them cost a vectorised
    scan, and the evidence is written there only where its row held some the last time (a
    row ``rows`` leaves at 0 is all zero)."""
    plate, cols, px, cell = where
    m0, m_inv, centre, l0, l_inv = noise
    c_end, c_inv, k, k0 = faint
    s0, s_inv, deepest, d_inv = shade
    col0, colf = cols   # a parallel loop takes arrays, not tuples of them: packed inside
    zero = np.float32(0.0)
    one = np.float32(1.0)
    h, w = slope.shape
    shadows = (evidence.shape[0] == h) & (evidence.shape[1] == w)   # else a stand-in: off
    lo = min(m0, s0) if shadows else m0
    hi = max(c_end, deepest) if shadows else c_end
    spans = -(-w // SPAN)
    for i in prange(h):
        sr, orow, gr = slope[i], offset[i], guide[i]
        er = evidence[i] if shadows else evidence[0]
        stale = shadows and rows[i] != 0
        plate_rows = _plate_rows(plate, px, cell, i)
        any_row = 0
        for span in range(spans):
            # the span's scan, as LLVM vectorises it: the spans counted, not a stepped range, and
            # indexed from j0 (no negative-index check); either other way it cost 3-5x as much
            j0 = span * SPAN
            j1 = min(j0 + SPAN, w)
            hits = np.int32(0)
            for n in range(j1 - j0):
                c = one - (sr[j0 + n] * gr[j0 + n] + orow[j0 + n])
                hits += np.int32((c > lo) & (c < hi))
            if hits == 0:
                if stale:
                    for j in range(j0, j1):
                        er[j] = zero
                continue
            for j in range(j0, j1):
                a = sr[j]
                b = orow[j]
                g = gr[j]
                c = one - (a * g + b)
                if c <= lo or c >= hi:
                    if shadows:
                        er[j] = zero
                    continue
                ys = _plate_luma(plate_rows, (col0, colf), j)
                dy = g - ys - centre
                if shadows:
                    e = zero
                    if c > s0 and c < deepest:
                        depth = min((c - s0) * s_inv, one) * min((deepest - c) * d_inv, one)
                        e = c * depth * _shade(c, g, ys, centre, l0, l_inv)
                    er[j] = e
                    any_row |= e > zero
                if c > m0 and c < c_end:
                    d = min(abs(dy), abs(dy + c * ys))
                    wt = (min((c - m0) * m_inv, one) * min(max((d - l0) * l_inv, zero), one)
                          * min((c_end - c) * c_inv, one))
                    sr[j] = a + wt * (k * a - a)
                    orow[j] = b + wt * (k * b + k0 - b)
        if shadows:
            rows[i] = any_row


@kernel
def _column_sum(evidence, y0, y1, x):
    total = np.float32(0.0)
    for y in range(y0, y1):
        total += evidence[y, x]
    return total


@kernel_parallel
def drop_shadows(slope, offset, guide, evidence, wide, rows):
    """In place on the model: each sample with shadow ``evidence`` moves towards the screen (q
    = 1) by its evidence over its coverage, times how wide the shade is around it: the
    evidence's mean over the box of radius ``r`` around it (clamped to the picture), over its
    coverage, ramped over ``wide`` = (r, lo, 1 / (hi - lo)). A shadow is wide: that mean is
    about its coverage; a strand of dark hair, or the edge of a black subject, holds a few
    samples of the box. Only rows ``rows`` marks; a row with few such samples sums each one's
    box, one with many slides the box along the row (each column's sum added once, taken away
    once)."""
    r, lo, inv = wide
    zero = np.float32(0.0)
    one = np.float32(1.0)
    h, w = slope.shape
    for i in prange(h):
        if rows[i] == 0:
            continue
        sr, orow, gr, er = slope[i], offset[i], guide[i], evidence[i]
        y0, y1 = max(i - r, 0), min(i + r + 1, h)
        n = 0
        for j in range(w):
            n += er[j] > zero
        slide = n * (2 * r + 1) > 2 * w
        running = zero   # with ``slide``: the sum over columns j - r .. j + r
        if slide:
            for x in range(min(r, w - 1) + 1):
                running += _column_sum(evidence, y0, y1, x)
        for j in range(w):
            e = er[j]
            if e > zero:
                if slide:
                    total = running
                else:
                    total = zero
                    for x in range(max(j - r, 0), min(j + r + 1, w)):
                        total += _column_sum(evidence, y0, y1, x)
                area = np.float32((y1 - y0) * (min(j + r + 1, w) - max(j - r, 0)))
                # the coverage now (the faint rule may have moved the model since; never
                # under the evidence, so the sample moves no more than all the way)
                c = max(one - (sr[j] * gr[j] + orow[j]), e)
                wt = e / c * min(max((total / area / c - lo) * inv, zero), one)
                sr[j] = sr[j] * (one - wt)
                orow[j] = orow[j] * (one - wt) + wt
            if slide:
                if j + r + 1 < w:
                    running += _column_sum(evidence, y0, y1, j + r + 1)
                if j - r >= 0:
                    running -= _column_sum(evidence, y0, y1, j - r)
