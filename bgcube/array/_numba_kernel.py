"""The loops of the compiled fill (numba), driven by `bgcube.array._numba_fill`.

Every compiled function is in this one module: numba's cache checks the
source file of each function it loads, not of the functions it calls.

An axis is binned by one of four methods (`bgcube.array._numba_plan.axis_plan`
picks it):

* ``LINEAR`` and ``LOG``: the position in bins, ``s = (g(v) - origin) *
  scale`` with ``g(v) = v`` or an estimate of ``log2(v)`` (:func:`_log2`: the
  exponent and a polynomial of the mantissa, no library call, so the loop
  compiles to vector code). ``floor(s)`` is the bin unless the fractional
  part of ``s`` is within the plan's margin of 0 or 1; the margin bounds the
  error of ``s`` plus the largest distance of an edge from its ideal uniform
  position, so a value far from that is binned exactly. A value near an
  edge is "unsure" and decided against the true edges (:func:`_exact_axis`).
* ``TABLE`` (positive edges): a lookup table on the top bits of the float64
  value. The bit pattern of positive floats grows with the value, so
  ``bits >> shift`` slices the axis into pieces of at most one edge each;
  the table holds the bin of each slice's start and one comparison with the
  next edge finishes the job, in integers only (the range test too: one
  unsigned comparison).
* ``SEARCH`` (any other edges): a binary search.

Each loop adds ``stride * bin`` to a buffer of int64 flat indices, and
``out`` (the overflow index) for values outside the axis.

Columns not in the canonical unit or byte order (energy in GeV, big-endian
FITS data) are converted block by block by :func:`_fill_range_converted`,
in the threads that fill, into small float64 buffers (:func:`_convert`):
the value ``v * factor`` in float64, rounded to float32 where the column
is float32, exactly what converting the column first with NumPy gives
(`bgcube.event_columns`), so the counts are the same to the last event.
A big-endian column comes as a native unsigned view of its bytes
(:func:`_stored_value` swaps them back). Where all three columns are
strided with factor 1 (a table read from FITS, its units handled by the
axes, see `bgcube.array._stored_edges`), :func:`_copy_rows` takes them out
of the rows in one pass, with no arithmetic.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.extending import intrinsic, overload

__all__ = ["LINEAR", "LOG", "TABLE", "SEARCH", "BLOCK"]

LINEAR, LOG, TABLE, SEARCH = 0, 1, 2, 3
#: Events per block: the per-block buffers stay in the L1/L2 cache.
BLOCK = 2048
#: Bound on ``|_log2(v) - log2(v)|`` for normal positive ``v`` (the polynomial's
#: error is 5.6e-8, the rounding of its evaluation far less; a test checks it).
LOG2_ERROR = 1e-7
#: Smallest normal float64: ``_log2`` reads the exponent of normal values only.
FLOAT64_TINY = 2.2250738585072014e-308
#: ``log2(1 + x)`` on ``[0, 1)``: degree 8, Chebyshev interpolation, power basis.
C0, C1, C2, C3, C4 = 5.6422440275483154e-08, 1.442685851294528, -0.7210957682030537, 0.4781764415123899, -0.34542933660333985  # fmt: skip
C5, C6, C7, C8 = 0.2380419836756127, -0.13314692748387624, 0.04943336843736993, -0.008665699320087797  # fmt: skip
MANTISSA, ONE = (1 << 52) - 1, 1023 << 52


@intrinsic
def _bits(typingctx, value):
    """The bit pattern of a float64, as an int64 (no memory round trip)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return numba.types.int64(numba.types.float64), codegen


@intrinsic
def _float(typingctx, bits):
    """The float64 of a bit pattern (the inverse of :func:`_bits`)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return numba.types.float64(numba.types.int64), codegen


@intrinsic
def _stored_value(typingctx, raw):
    """A stored value as a float: a float as it is; a uint64 or uint32 (the bytes
    of a big-endian float64 or float32) byte-swapped and reinterpreted."""
    if isinstance(raw, numba.types.Float):
        return raw(raw), lambda context, builder, signature, args: args[0]
    floats = {numba.types.uint64: ir.DoubleType(), numba.types.uint32: ir.FloatType()}
    if raw not in floats:
        return None
    out = numba.types.float64 if raw == numba.types.uint64 else numba.types.float32

    def codegen(context, builder, signature, args):
        return builder.bitcast(builder.bswap(args[0]), floats[raw])

    return out(raw), codegen


def _scaled(raw, factor):
    """A stored value in its canonical unit, as :func:`_convert` gives it (compiled only).

    In a loop with fast-math ``contract``, a float64 product may be fused
    into a following subtraction (an FMA, rounded once): the caller uses it
    only where none follows (a ``LOG`` axis reads its bits) or the factor
    is 1. A float32 product is rounded by its conversion, which nothing
    fuses across.
    """


@overload(_scaled, inline="always")
def _scaled_impl(raw, factor):
    if raw in (numba.types.float32, numba.types.uint32):  # rounded to float32, then exact

        def single(raw, factor):
            return np.float64(np.float32(np.float64(_stored_value(raw)) * factor))

        return single

    def double(raw, factor):  # only on LOG axes, whose loop reads the bits of the product
        return np.float64(_stored_value(raw)) * factor

    return double


@numba.njit(cache=True, nogil=True, inline="always")
def _log2(v):
    """``log2(v)`` within :data:`LOG2_ERROR` for normal positive ``v`` (else meaningless)."""
    b = _bits(v)
    x = _float((b & MANTISSA) | ONE) - 1.0  # the mantissa, in [0, 1)
    p = ((((((((C8 * x + C7) * x + C6) * x + C5) * x + C4) * x + C3) * x + C2) * x + C1) * x) + C0
    return np.float64((b >> 52) - 1023) + p


@numba.njit(cache=True, nogil=True, inline="always")
def _position(v, plan, log):
    """``(floor(s), inside, sure)`` of ``v`` on a ``LINEAR`` or ``LOG`` (``log``) axis.

    ``sure``: ``v`` is inside and ``floor(s)`` is its bin.
    """
    lo, hi, origin, scale, near = plan[2], plan[3], plan[4], plan[5], plan[6]
    s = ((_log2(v) if log else v) - origin) * scale
    f = np.floor(s)
    r = s - f
    inside = (v >= lo) & (v < hi)
    return f, inside, inside & (r >= near) & (r <= 1.0 - near)


@numba.njit(cache=True, nogil=True, inline="always")
def _arithmetic_axis(values, plan, stride, out, index, log):
    n_unsure = 0
    for j in range(values.shape[0]):
        f, inside, sure = _position(np.float64(values[j]), plan, log)
        n_unsure += inside != sure
        index[j] += np.int64(f * stride) if inside else out  # the cast is used inside only
    return n_unsure


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def _log_axis(values, plan, stride, out, index):
    """``LOG``; the number of unsure values (fused multiply-adds in the polynomial)."""
    return _arithmetic_axis(values, plan, stride, out, index, True)


@numba.njit(cache=True, nogil=True)
def _linear_axis(values, plan, stride, out, index):
    """``LINEAR``; the number of unsure values."""
    return _arithmetic_axis(values, plan, stride, out, index, False)


@numba.njit(cache=True, nogil=True)
def _table_axis(values, lo, hi, shift, key0, upper, table, stride, out, index):
    """``TABLE``: the lookup table on the float64 bit pattern, in integers only.

    ``upper`` holds the bit patterns of the upper edges: positive floats
    compare as their bit patterns do. ``b - bits(lo)``, unsigned, is below
    ``bits(hi) - bits(lo)`` exactly when ``lo <= v < hi`` (negative values,
    zeros, infinities and NaN included), and then the key is in the table.
    """
    bits_lo = np.uint64(_bits(lo))
    span = np.uint64(_bits(hi)) - bits_lo
    key0 = np.uint64(key0)
    for j in range(values.shape[0]):
        b = _bits(np.float64(values[j]))
        inside = np.uint64(b) - bits_lo < span
        key = np.uint64(b >> shift) - key0 if inside else np.uint64(0)
        i = table[key] + (b >= upper[key])
        index[j] += i * stride if inside else out


@numba.njit(cache=True, nogil=True, inline="always")
def _search(v, edges):
    """Binary search: the bin whose ``[lo, hi)`` holds ``v`` (``v`` inside)."""
    nbin = edges.shape[0] - 1
    i, step = 0, 1
    while step * 2 < nbin:
        step *= 2
    while step > 0:
        if i + step < nbin and v >= edges[i + step]:
            i += step
        step //= 2
    return i


@numba.njit(cache=True, nogil=True, inline="always")
def _exact_bin(v, edges, i):
    """Move estimate ``i`` to the bin whose ``[lo, hi)`` holds ``v`` (``v`` inside)."""
    nbin = edges.shape[0] - 1
    i = min(max(i, 0), nbin - 1)
    while v < edges[i]:
        i -= 1
    while v >= edges[i + 1]:
        i += 1
    return i


@numba.njit(cache=True, nogil=True)
def _add_axis(values, plan, stride, out, index):
    """Add ``stride * bin`` of each value to ``index`` (``out`` outside the axis).

    Returns the number of unsure values (``LINEAR``, ``LOG``): their terms
    may be one bin off, and :func:`_exact_axis` must redo the block.
    """
    method, lo, hi, shift, key0, edges, table = plan[0], plan[2], plan[3], plan[7], plan[8], plan[9], plan[10]  # fmt: skip
    if method == LINEAR:
        return _linear_axis(values, plan, stride, out, index)
    if method == LOG:
        return _log_axis(values, plan, stride, out, index)
    if method == TABLE:
        _table_axis(values, lo, hi, shift, key0, edges.view(np.int64), table, stride, out, index)
        return 0
    for j in range(values.shape[0]):
        v = np.float64(values[j])
        index[j] += stride * _search(v, edges) if (v >= lo) & (v < hi) else out
    return 0


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def _exact_axis(values, plan, stride, out, index):
    """:func:`_add_axis`, every value decided against the true edges (slow, for rare blocks)."""
    method, edges = plan[0], plan[9]
    if method != LINEAR and method != LOG:
        _add_axis(values, plan, stride, out, index)
        return
    for j in range(values.shape[0]):
        v = np.float64(values[j])
        f, inside, sure = _position(v, plan, method == LOG)
        index[j] += stride * _exact_bin(v, edges, int(f)) if inside else out


@numba.njit(cache=True, nogil=True, inline="always")
def _fused(e, y, x, plans, total, index, log):
    n_unsure = 0
    plan_e, plan_y, plan_x = plans
    ny, nx = plan_y[1], plan_x[1]
    for j in range(e.shape[0]):
        fe, inside_e, sure_e = _position(np.float64(e[j]), plan_e, log)
        fy, inside_y, sure_y = _position(np.float64(y[j]), plan_y, False)
        fx, inside_x, sure_x = _position(np.float64(x[j]), plan_x, False)
        inside = inside_e & inside_y & inside_x
        sure = sure_e & sure_y & sure_x
        n_unsure += inside != sure
        index[j] = np.int64((fe * ny + fy) * nx + fx) if sure else total
    return n_unsure


@numba.njit(cache=True, nogil=True, inline="always")
def _fused_stored(e, y, x, plans, total, index, log, factors):
    """:func:`_fused` of stored columns, each value converted in the loop (:func:`_scaled`)."""
    n_unsure = 0
    plan_e, plan_y, plan_x = plans
    ny, nx = plan_y[1], plan_x[1]
    f_e, f_y, f_x = factors[0], factors[1], factors[2]
    for j in range(e.shape[0]):
        fe, inside_e, sure_e = _position(_scaled(e[j], f_e), plan_e, log)
        fy, inside_y, sure_y = _position(_scaled(y[j], f_y), plan_y, False)
        fx, inside_x, sure_x = _position(_scaled(x[j], f_x), plan_x, False)
        inside = inside_e & inside_y & inside_x
        sure = sure_e & sure_y & sure_x
        n_unsure += inside != sure
        index[j] = np.int64((fe * ny + fy) * nx + fx) if sure else total
    return n_unsure


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def fused_index_stored(e, y, x, plans, total, index, factors):
    """:func:`fused_index` of stored columns (any byte order and unit)."""
    if plans[0][0] == LOG:
        return _fused_stored(e, y, x, plans, total, index, True, factors)
    return _fused_stored(e, y, x, plans, total, index, False, factors)


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def fused_index(e, y, x, plans, total, index):
    """All three flat indices in one vector loop: energy ``LOG`` or ``LINEAR``, FoV ``LINEAR``.

    Writes ``index[:len(e)]`` (``total`` outside the cube and for unsure
    events) and returns the number of unsure events inside the cube.
    """
    if plans[0][0] == LOG:
        return _fused(e, y, x, plans, total, index, True)
    return _fused(e, y, x, plans, total, index, False)


@numba.njit(cache=True, nogil=True)
def _convert(raw, factor, out):
    """``out[j] = float64(value_j) * factor``, rounded once to ``out``'s type (no fast-math)."""
    for j in range(raw.shape[0]):
        out[j] = np.float64(_stored_value(raw[j])) * factor


@numba.njit(cache=True, nogil=True)
def _copy_rows(e, y, x, start, n, out_e, out_y, out_x):
    """The stored values of rows ``start:start+n`` of three columns, byte-swapped where
    big-endian, into buffers of their type: one pass over the rows, no arithmetic
    (columns read with factor 1). Unsigned indices: no wraparound test in the loop."""
    for j in range(n):
        k = np.uint64(start + j)
        out_e[j] = _stored_value(e[k])
        out_y[j] = _stored_value(y[k])
        out_x[j] = _stored_value(x[k])


@numba.njit(cache=True, nogil=True, inline="always")
def _scatter(index, n, w, e, y, x, f_e, f_y, f_x, counts, bad):
    """Add the ``n`` events of a block to their bins: ``index[j]``, or the overflow bin
    (the last of ``counts``) when any axis is outside. ``bad[0]`` counts the events with
    a NaN or infinite value once converted with its factor (:func:`_scaled`); they are
    looked for only among the events outside the cube (the rare branch), so the count
    costs nothing for events inside. ``w`` is empty for unit weights."""
    total = counts.shape[0] - 1
    limit = np.uint64(total)  # unsigned: a negative index could only be a bug, not a write
    weighted = w.shape[0] > 0
    for j in range(n):
        i = np.uint64(index[j])  # >= total when any axis is outside
        if i < limit:
            counts[i] += w[j] if weighted else 1.0
        else:
            counts[total] += w[j] if weighted else 1.0
            finite = np.isfinite(_scaled(e[j], f_e)) and np.isfinite(_scaled(y[j], f_y))
            if not (finite and np.isfinite(_scaled(x[j], f_x))):
                bad[0] += 1


@numba.njit(cache=True, nogil=True)
def _fill_block(e, y, x, w, plans, fused, counts, bad, index):
    """Add the events of one block (at most :data:`BLOCK`) into ``counts``.

    ``fused``: the axes suit :func:`fused_index`. ``bad[0]`` counts the
    events with a NaN or infinite coordinate (:func:`_scatter`). ``w`` is
    empty for unit weights.
    """
    plan_e, plan_y, plan_x = plans
    ny = plan_y[1]
    nx = plan_x[1]
    total = counts.shape[0] - 1
    n = e.shape[0]
    if fused:
        unsure = fused_index(e, y, x, plans, total, index)
    else:
        index[:n] = 0
        unsure = _add_axis(e, plan_e, ny * nx, total, index)
        unsure += _add_axis(y, plan_y, nx, total, index)
        unsure += _add_axis(x, plan_x, 1, total, index)
    if unsure > 0:  # rare: redo the block against the true edges
        index[:n] = 0
        _exact_axis(e, plan_e, ny * nx, total, index)
        _exact_axis(y, plan_y, nx, total, index)
        _exact_axis(x, plan_x, 1, total, index)
    _scatter(index, n, w, e, y, x, 1.0, 1.0, 1.0, counts, bad)


@numba.njit(cache=True, nogil=True)
def _fill_range(energy, dety, detx, weights, start, stop, plans, fused, counts, bad):
    """Add events ``start:stop`` into ``counts`` (flat, float64, one overflow bin)."""
    weighted = weights.shape[0] > 0
    index = np.empty(BLOCK, dtype=np.int64)
    for block in range(start, stop, BLOCK):
        end = min(block + BLOCK, stop)
        w = weights[block:end] if weighted else weights
        e, y, x = energy[block:end], dety[block:end], detx[block:end]
        _fill_block(e, y, x, w, plans, fused, counts, bad, index)


@numba.njit(cache=True, nogil=True)
def _fill_range_converted(
    energy, dety, detx, direct, weights, start, stop, plans, fused, counts, bad, factors
):
    """:func:`_fill_range` of stored columns, converted block by block (:func:`_convert`).

    ``direct[k]`` is column ``k`` itself where it needs no conversion
    (native, contiguous, factor 1), else an empty array of the type its
    values are rounded to (float32 for a float32 column, else float64);
    ``factors[k]`` is its unit factor. A converted column may be a uint
    view of big-endian data.
    """
    weighted = weights.shape[0] > 0
    index = np.empty(BLOCK, dtype=np.int64)
    direct_e, direct_y, direct_x = direct
    convert_e, convert_y, convert_x = (
        direct_e.shape[0] == 0,
        direct_y.shape[0] == 0,
        direct_x.shape[0] == 0,
    )
    buffer_e = np.empty(BLOCK, dtype=direct_e.dtype)
    buffer_y = np.empty(BLOCK, dtype=direct_y.dtype)
    buffer_x = np.empty(BLOCK, dtype=direct_x.dtype)
    # all three converted with factor 1 (a table's rows): one copy over the rows
    copy_rows = convert_e and convert_y and convert_x
    copy_rows = copy_rows and factors[0] == 1.0 and factors[1] == 1.0 and factors[2] == 1.0
    for block in range(start, stop, BLOCK):
        end = min(block + BLOCK, stop)
        n = end - block
        w = weights[block:end] if weighted else weights
        if copy_rows:
            _copy_rows(energy, dety, detx, block, n, buffer_e, buffer_y, buffer_x)
            e, y, x = buffer_e[:n], buffer_y[:n], buffer_x[:n]
            _fill_block(e, y, x, w, plans, fused, counts, bad, index)
            continue
        if convert_e:
            _convert(energy[block:end], factors[0], buffer_e)
            e = buffer_e[:n]
        else:
            e = direct_e[block:end]
        if convert_y:
            _convert(dety[block:end], factors[1], buffer_y)
            y = buffer_y[:n]
        else:
            y = direct_y[block:end]
        if convert_x:
            _convert(detx[block:end], factors[2], buffer_x)
            x = buffer_x[:n]
        else:
            x = direct_x[block:end]
        _fill_block(e, y, x, w, plans, fused, counts, bad, index)


@numba.njit(cache=True, nogil=True)
def _fill_range_stored(
    energy, dety, detx, direct, weights, start, stop, plans, fused, counts, bad, factors
):
    """:func:`_fill_range_converted` for the axes of :func:`fused_index` (``fused``).

    The values are converted in the index loop itself (no buffer, no
    extra pass); only a block with an unsure event is converted into
    buffers and redone by :func:`_fill_block`. For contiguous columns
    only (strided loads would stop the loop's vector code), and a float64
    column with a factor other than 1 on a ``LOG`` axis only (see
    :func:`_scaled`).
    """
    total = counts.shape[0] - 1
    weighted = weights.shape[0] > 0
    index = np.empty(BLOCK, dtype=np.int64)
    buffer_e = np.empty(BLOCK, dtype=direct[0].dtype)
    buffer_y = np.empty(BLOCK, dtype=direct[1].dtype)
    buffer_x = np.empty(BLOCK, dtype=direct[2].dtype)
    f_e, f_y, f_x = factors[0], factors[1], factors[2]
    for block in range(start, stop, BLOCK):
        end = min(block + BLOCK, stop)
        n = end - block
        w = weights[block:end] if weighted else weights
        e, y, x = energy[block:end], dety[block:end], detx[block:end]
        if fused_index_stored(e, y, x, plans, total, index, factors) > 0:  # rare
            _convert(e, f_e, buffer_e)
            _convert(y, f_y, buffer_y)
            _convert(x, f_x, buffer_x)
            b_e, b_y, b_x = buffer_e[:n], buffer_y[:n], buffer_x[:n]
            _fill_block(b_e, b_y, b_x, w, plans, fused, counts, bad, index)
            continue
        _scatter(index, n, w, e, y, x, f_e, f_y, f_x, counts, bad)
