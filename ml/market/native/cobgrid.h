/* cobgrid: a price-grid order book, Binance diff-depth parser, sync check and COB frames in C.
 *
 * Built by ml/market/native/__init__.py (gcc -O2 -shared -fPIC) into a cache directory and loaded
 * with ctypes. One translation unit (cobgrid.c includes book.c, frames.c, stream.c) so the hot
 * helpers stay static and inlined; this header holds the shared types. No Python API is used:
 * every buffer is owned by the caller (numpy arrays).
 *
 * Book: prices are integer ticks (price = tick / 10^dec, dec = decimals of the tick size). Each
 * side keeps a dense array of sizes over a window of `cap` ticks [base, base + cap) plus a bitmap
 * of occupied ticks (best-price search and frame scans walk set bits only). Levels outside the
 * window live in a small unsorted overflow list. The window is re-centred on the mid when a frame's
 * bucket range would leave it.
 *
 * Exact float semantics (frames equal to the peer's Python code):
 *  - a decimal string "m.fff" with k fraction digits parses to m_int / 10^k in double, which is the
 *    correctly rounded value (both exact doubles, IEEE division), i.e. Python's float(str);
 *  - a tick's price tick / 10^dec is likewise float() of its decimal string;
 *  - bucket index uses CPython's float floor division (float_floor_div), sums run best-first.
 */
#ifndef COBGRID_H
#define COBGRID_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { BID = 0, ASK = 1 };
enum {
    ST_APPLIED = 0, ST_DROPPED = 1, ST_GAP = 2, ST_CROSSED = 3, ST_MALFORMED = 4,
    ST_REJECTED = 5, ST_IGNORED = 6, ST_UNSYNCED = 7, ST_SNAPSHOT = 8
};
/* stats slots */
enum {
    S_APPLIED, S_DROPPED, S_GAPS, S_CROSSED, S_MALFORMED, S_REJECTED, S_IGNORED, S_LEVELS,
    S_FRAMES, S_FRAMES_SKIPPED, S_RECENTERS, S_OVERFLOW_SETS, S_ZERO_SKIPPED, S_SNAPSHOTS, S_N
};
#define MAXW 8
#define MA_LEN_MAX 3600

typedef struct {
    int64_t base, cap, nwords;
    double *q[2];
    uint64_t *bits[2];
    int64_t nlev[2];
    int64_t *otick[2];
    double *oq[2];
    int64_t on[2], ocap[2];
    int64_t best[2];
    int dec;
    double pow10;
    /* sync */
    int rule, synced, expect_first;
    int64_t last_id;
    /* frames */
    double width;
    int nb;
    int nw, windows[MAXW], ma_len, ma_count, ma_head;
    int64_t *ma_keys;
    double *ma_imb, *ma_imb5;
    /* scratch for one message */
    int64_t *sc_tick;
    double *sc_q;
    int *sc_side;
    int64_t sc_n, sc_cap;
    int64_t msg_E, msg_U, msg_u, msg_pu, msg_last;
    int msg_has_pu, msg_kind; /* kind: 1 depth, 2 snapshot, 0 other */
    int64_t stats[S_N];
} Book;

static const double P10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                             1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

#endif
