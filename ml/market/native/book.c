/* cobgrid: book storage (tick grid + bitmap + overflow list) and the public book API. */
#include "cobgrid.h"

/* ---------------------------------------------------------------- book storage */

static void grid_clear(Book *b) {
    for (int s = 0; s < 2; s++) {
        memset(b->q[s], 0, sizeof(double) * b->cap);
        memset(b->bits[s], 0, sizeof(uint64_t) * b->nwords);
        b->nlev[s] = 0;
        b->on[s] = 0;
    }
    b->best[BID] = INT64_MIN;
    b->best[ASK] = INT64_MAX;
}

void cg_free(Book *b) {
    if (!b) return;
    for (int s = 0; s < 2; s++) {
        free(b->q[s]); free(b->bits[s]); free(b->otick[s]); free(b->oq[s]);
    }
    free(b->ma_keys); free(b->ma_imb); free(b->ma_imb5);
    free(b->sc_tick); free(b->sc_q); free(b->sc_side);
    free(b);
}

Book *cg_new(int dec, int64_t cap, double width, int nb, int rule, const int *windows, int nw) {
    if (dec < 0 || dec > 15 || cap < 1024 || nb < 0 || nb > 1024 || nw < 0 || nw > MAXW || !(width > 0)) return NULL;
    Book *b = calloc(1, sizeof(Book));
    if (!b) return NULL;
    b->cap = (cap + 63) & ~(int64_t)63;
    b->nwords = b->cap / 64;
    b->dec = dec;
    b->pow10 = P10[dec];
    b->width = width;
    b->nb = nb;
    b->rule = rule;
    b->nw = nw;
    b->ma_len = 1;
    for (int i = 0; i < nw; i++) {
        if (windows[i] < 1 || windows[i] > MA_LEN_MAX) { cg_free(b); return NULL; }
        b->windows[i] = windows[i];
        if (windows[i] > b->ma_len) b->ma_len = windows[i];
    }
    int nbk = 2 * nb + 1;
    int ok = 1;
    for (int s = 0; s < 2; s++) {
        b->q[s] = calloc(b->cap, sizeof(double));
        b->bits[s] = calloc(b->nwords, sizeof(uint64_t));
        b->ocap[s] = 64;
        b->otick[s] = malloc(sizeof(int64_t) * 64);
        b->oq[s] = malloc(sizeof(double) * 64);
        ok &= b->q[s] && b->bits[s] && b->otick[s] && b->oq[s];
    }
    b->ma_keys = calloc(b->ma_len, sizeof(int64_t));
    b->ma_imb = calloc((size_t)b->ma_len * nbk, sizeof(double));
    b->ma_imb5 = calloc(b->ma_len, sizeof(double));
    b->sc_cap = 4096;
    b->sc_tick = malloc(sizeof(int64_t) * b->sc_cap);
    b->sc_q = malloc(sizeof(double) * b->sc_cap);
    b->sc_side = malloc(sizeof(int) * b->sc_cap);
    ok &= b->ma_keys && b->ma_imb && b->ma_imb5 && b->sc_tick && b->sc_q && b->sc_side;
    if (!ok) { cg_free(b); return NULL; }
    b->best[BID] = INT64_MIN;
    b->best[ASK] = INT64_MAX;
    b->base = 0;
    return b;
}

Book *cg_copy(const Book *src) {
    Book *b = cg_new(src->dec, src->cap, src->width, src->nb, src->rule, src->windows, src->nw);
    if (!b) return NULL;
    for (int s = 0; s < 2; s++) {
        memcpy(b->q[s], src->q[s], sizeof(double) * src->cap);
        memcpy(b->bits[s], src->bits[s], sizeof(uint64_t) * src->nwords);
        if (src->ocap[s] > b->ocap[s]) {
            b->otick[s] = realloc(b->otick[s], sizeof(int64_t) * src->ocap[s]);
            b->oq[s] = realloc(b->oq[s], sizeof(double) * src->ocap[s]);
            b->ocap[s] = src->ocap[s];
        }
        memcpy(b->otick[s], src->otick[s], sizeof(int64_t) * src->on[s]);
        memcpy(b->oq[s], src->oq[s], sizeof(double) * src->on[s]);
        b->on[s] = src->on[s];
        b->nlev[s] = src->nlev[s];
        b->best[s] = src->best[s];
    }
    b->base = src->base;
    b->synced = src->synced; b->expect_first = src->expect_first; b->last_id = src->last_id;
    memcpy(b->stats, src->stats, sizeof(b->stats));
    return b;
}

/* highest set bit <= i, or -1 */
static int64_t bits_prev(const uint64_t *bits, int64_t i) {
    if (i < 0) return -1;
    int64_t w = i >> 6;
    uint64_t word = bits[w] & (~0ULL >> (63 - (i & 63)));
    while (1) {
        if (word) return (w << 6) + 63 - __builtin_clzll(word);
        if (--w < 0) return -1;
        word = bits[w];
    }
}

/* lowest set bit >= i, or -1 */
static int64_t bits_next(const uint64_t *bits, int64_t nwords, int64_t i) {
    int64_t w = i >> 6;
    if (w >= nwords) return -1;
    uint64_t word = bits[w] & (~0ULL << (i & 63));
    while (1) {
        if (word) return (w << 6) + __builtin_ctzll(word);
        if (++w >= nwords) return -1;
        word = bits[w];
    }
}

static void recompute_best(Book *b, int s) {
    int64_t best = s == BID ? INT64_MIN : INT64_MAX;
    int64_t g = s == BID ? bits_prev(b->bits[s], b->cap - 1) : bits_next(b->bits[s], b->nwords, 0);
    if (g >= 0) best = b->base + g;
    for (int64_t k = 0; k < b->on[s]; k++) {
        int64_t t = b->otick[s][k];
        if (s == BID ? t > best : t < best) best = t;
    }
    b->best[s] = best;
}

static int ovf_set(Book *b, int s, int64_t tick, double qty) {
    int64_t n = b->on[s];
    for (int64_t k = 0; k < n; k++) {
        if (b->otick[s][k] == tick) {
            if (qty == 0.0) {
                b->otick[s][k] = b->otick[s][n - 1];
                b->oq[s][k] = b->oq[s][n - 1];
                b->on[s] = n - 1;
                return -1;
            }
            b->oq[s][k] = qty;
            return 0;
        }
    }
    if (qty == 0.0) return 0;
    if (n == b->ocap[s]) {
        int64_t nc = b->ocap[s] * 2;
        int64_t *t = realloc(b->otick[s], sizeof(int64_t) * nc);
        if (!t) return -2;
        b->otick[s] = t;
        double *q = realloc(b->oq[s], sizeof(double) * nc);
        if (!q) return -2;
        b->oq[s] = q;
        b->ocap[s] = nc;
    }
    b->otick[s][n] = tick;
    b->oq[s][n] = qty;
    b->on[s] = n + 1;
    return 1;
}

/* Set the absolute size of one level (0 deletes; deleting an absent level is a no-op). */
static void set_level(Book *b, int s, int64_t tick, double qty) {
    int64_t i = tick - b->base;
    int removed = 0;
    if (i >= 0 && i < b->cap) {
        double old = b->q[s][i];
        if (qty == 0.0) {
            if (old != 0.0) {
                b->q[s][i] = 0.0;
                b->bits[s][i >> 6] &= ~(1ULL << (i & 63));
                b->nlev[s]--;
                removed = 1;
            }
        } else {
            if (old == 0.0) {
                b->bits[s][i >> 6] |= 1ULL << (i & 63);
                b->nlev[s]++;
            }
            b->q[s][i] = qty;
        }
    } else {
        b->stats[S_OVERFLOW_SETS]++;
        removed = ovf_set(b, s, tick, qty) == -1;
    }
    if (qty != 0.0) {
        if (s == BID ? tick > b->best[BID] : tick < b->best[ASK]) b->best[s] = tick;
    } else if (removed && tick == b->best[s]) {
        if (i >= 0 && i < b->cap && b->on[s] == 0) {
            int64_t g = s == BID ? bits_prev(b->bits[s], i) : bits_next(b->bits[s], b->nwords, i);
            b->best[s] = g >= 0 ? b->base + g : (s == BID ? INT64_MIN : INT64_MAX);
        } else {
            recompute_best(b, s);
        }
    }
}

/* Move the window so that it starts at new_base; every level is kept. */
static int recenter(Book *b, int64_t new_base) {
    b->stats[S_RECENTERS]++;
    for (int s = 0; s < 2; s++) {
        int64_t n = b->nlev[s] + b->on[s];
        int64_t *t = malloc(sizeof(int64_t) * (n + 1));
        double *q = malloc(sizeof(double) * (n + 1));
        if (!t || !q) { free(t); free(q); return -1; }
        int64_t k = 0;
        for (int64_t g = bits_next(b->bits[s], b->nwords, 0); g >= 0; g = bits_next(b->bits[s], b->nwords, g + 1)) {
            t[k] = b->base + g; q[k] = b->q[s][g]; k++;
            if (g + 1 >= b->cap) break;
        }
        for (int64_t j = 0; j < b->on[s]; j++) { t[k] = b->otick[s][j]; q[k] = b->oq[s][j]; k++; }
        memset(b->q[s], 0, sizeof(double) * b->cap);
        memset(b->bits[s], 0, sizeof(uint64_t) * b->nwords);
        b->nlev[s] = 0; b->on[s] = 0;
        b->best[s] = s == BID ? INT64_MIN : INT64_MAX;
        int64_t saved = b->stats[S_OVERFLOW_SETS];
        b->base = new_base;
        for (int64_t j = 0; j < k; j++) set_level(b, s, t[j], q[j]);
        b->stats[S_OVERFLOW_SETS] = saved;
        free(t); free(q);
    }
    return 0;
}

/* ---------------------------------------------------------------- public book API */

void cg_clear(Book *b) { grid_clear(b); b->synced = 0; b->expect_first = 1; }

/* Start a snapshot load: clear, centre the window on center_tick. */
void cg_begin_snapshot(Book *b, int64_t center_tick) {
    grid_clear(b);
    b->base = center_tick - b->cap / 2;
}

/* Set levels from float (price, size) pairs, interleaved: pairs[2k] price, pairs[2k+1] size.
 * All levels are validated first: if any price is not > 0 / NaN / off the tick grid, or any size
 * is negative / NaN / infinite, nothing is applied and the count of bad levels is returned
 * (0 = applied). Size-0 levels delete. */
int64_t cg_set_levels(Book *b, int s, const double *pairs, int64_t n) {
    int64_t bad = 0;
    for (int64_t k = 0; k < n; k++) {
        double p = pairs[2 * k], q = pairs[2 * k + 1];
        if (!(p > 0) || !(q >= 0) || isinf(q) || !(p * b->pow10 < 9.0e15)) { bad++; continue; }
        int64_t tick = llround(p * b->pow10);
        if ((double)tick / b->pow10 != p) bad++;
    }
    if (bad) { b->stats[S_REJECTED] += bad; return bad; }
    for (int64_t k = 0; k < n; k++) set_level(b, s, llround(pairs[2 * k] * b->pow10), pairs[2 * k + 1]);
    return 0;
}

static int64_t count_bad(const Book *b, const double *pairs, int64_t n) {
    int64_t bad = 0;
    for (int64_t k = 0; k < n; k++) {
        double p = pairs[2 * k], q = pairs[2 * k + 1];
        if (!(p > 0) || !(q >= 0) || isinf(q) || !(p * b->pow10 < 9.0e15)) { bad++; continue; }
        if ((double)llround(p * b->pow10) / b->pow10 != p) bad++;
    }
    return bad;
}

/* One diff of both sides: validate every level of both first (as cg_set_levels), apply only if
 * all are good. Returns the number of bad levels (0 = applied). */
int64_t cg_apply_update(Book *b, const double *bids, int64_t nb, const double *asks, int64_t na) {
    int64_t bad = count_bad(b, bids, nb) + count_bad(b, asks, na);
    if (bad) { b->stats[S_REJECTED] += bad; return bad; }
    for (int64_t k = 0; k < nb; k++) set_level(b, BID, llround(bids[2 * k] * b->pow10), bids[2 * k + 1]);
    for (int64_t k = 0; k < na; k++) set_level(b, ASK, llround(asks[2 * k] * b->pow10), asks[2 * k + 1]);
    return 0;
}

double cg_best_price(const Book *b, int s) {
    if (s == BID) return b->best[BID] == INT64_MIN ? NAN : (double)b->best[BID] / b->pow10;
    return b->best[ASK] == INT64_MAX ? NAN : (double)b->best[ASK] / b->pow10;
}

int64_t cg_depth(const Book *b, int s) { return b->nlev[s] + b->on[s]; }

double cg_size(const Book *b, int s, double price) {
    int64_t tick = llround(price * b->pow10);
    int64_t i = tick - b->base;
    if (i >= 0 && i < b->cap) return b->q[s][i];
    for (int64_t k = 0; k < b->on[s]; k++) if (b->otick[s][k] == tick) return b->oq[s][k];
    return 0.0;
}

/* Up to max levels best-first from the grid, then every overflow level (unsorted). Returns the
 * count written; *n_overflow gets how many of them came from the overflow list. */
int64_t cg_levels(const Book *b, int s, double *prices, double *sizes, int64_t max, int64_t *n_overflow) {
    int64_t k = 0;
    if (s == BID) {
        for (int64_t g = bits_prev(b->bits[s], b->cap - 1); g >= 0 && k < max; g = bits_prev(b->bits[s], g - 1)) {
            prices[k] = (double)(b->base + g) / b->pow10; sizes[k] = b->q[s][g]; k++;
        }
    } else {
        for (int64_t g = bits_next(b->bits[s], b->nwords, 0); g >= 0 && k < max;) {
            prices[k] = (double)(b->base + g) / b->pow10; sizes[k] = b->q[s][g]; k++;
            if (g + 1 >= b->cap) break;
            g = bits_next(b->bits[s], b->nwords, g + 1);
        }
    }
    int64_t o = 0;
    for (int64_t j = 0; j < b->on[s] && k < max; j++, o++) {
        prices[k] = (double)b->otick[s][j] / b->pow10; sizes[k] = b->oq[s][j]; k++;
    }
    *n_overflow = o;
    return k;
}

int cg_is_crossed(const Book *b) {
    return b->best[BID] != INT64_MIN && b->best[ASK] != INT64_MAX && b->best[BID] >= b->best[ASK];
}

int64_t *cg_stats(Book *b) { return b->stats; }
int64_t cg_base(const Book *b) { return b->base; }
int64_t cg_last_id(const Book *b) { return b->last_id; }
int cg_synced(const Book *b) { return b->synced; }
int64_t cg_msg_E(const Book *b) { return b->msg_E; }

/* Mark the book synced at update id last_id (after a snapshot load). */
void cg_set_synced(Book *b, int64_t last_id) {
    b->last_id = last_id;
    b->expect_first = 1;
    b->synced = !cg_is_crossed(b);
    b->stats[S_SNAPSHOTS]++;
}

void cg_set_unsynced(Book *b) { b->synced = 0; }
