/* cobgrid: Binance depth JSON parsing, the sync rule, and the batch loop. */
#include "cobgrid.h"

/* ---------------------------------------------------------------- JSON parsing (Binance depth) */

typedef struct { const char *p, *e; } Cur;

static inline void ws(Cur *c) { while (c->p < c->e && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t')) c->p++; }

static int skip_string(Cur *c) {
    if (c->p >= c->e || *c->p != '"') return -1;
    c->p++;
    while (c->p < c->e) {
        if (*c->p == '\\') { c->p += 2; continue; }
        if (*c->p == '"') { c->p++; return 0; }
        c->p++;
    }
    return -1;
}

static int skip_value(Cur *c, int depth) {
    ws(c);
    if (c->p >= c->e || depth > 32) return -1;
    char ch = *c->p;
    if (ch == '"') return skip_string(c);
    if (ch == '{' || ch == '[') {
        char close = ch == '{' ? '}' : ']';
        c->p++;
        ws(c);
        if (c->p < c->e && *c->p == close) { c->p++; return 0; }
        while (1) {
            if (ch == '{') {
                ws(c);
                if (skip_string(c)) return -1;
                ws(c);
                if (c->p >= c->e || *c->p != ':') return -1;
                c->p++;
            }
            if (skip_value(c, depth + 1)) return -1;
            ws(c);
            if (c->p >= c->e) return -1;
            if (*c->p == ',') { c->p++; continue; }
            if (*c->p == close) { c->p++; return 0; }
            return -1;
        }
    }
    while (c->p < c->e && *c->p != ',' && *c->p != '}' && *c->p != ']' && *c->p != ' ') c->p++;
    return 0;
}

static int parse_int(Cur *c, int64_t *out) {
    ws(c);
    int neg = 0;
    if (c->p < c->e && *c->p == '-') { neg = 1; c->p++; }
    const char *s = c->p;
    int64_t v = 0;
    while (c->p < c->e && *c->p >= '0' && *c->p <= '9') {
        if (v > (INT64_MAX - 9) / 10) return -1;
        v = v * 10 + (*c->p - '0');
        c->p++;
    }
    if (c->p == s) return -1;
    if (c->p < c->e && (*c->p == '.' || *c->p == 'e' || *c->p == 'E')) return -1;
    *out = neg ? -v : v;
    return 0;
}

/* "123.4500" -> mantissa 1234500, scale 4 (slow path: any length, leading zeros dropped).
 * Only digits and one '.', non-negative, <= 18 significant digits, at least one digit. */
static int parse_decstr_slow(Cur *c, int64_t *mant, int *scale) {
    if (c->p >= c->e || *c->p != '"') return -1;
    c->p++;
    int64_t m = 0;
    int digits = 0, sc = 0, dot = 0, any = 0;
    while (c->p < c->e && *c->p != '"') {
        char ch = *c->p++;
        if (ch >= '0' && ch <= '9') {
            any = 1;
            if (m == 0 && ch == '0') { if (dot) sc++; continue; }
            if (++digits > 18) return -1;
            m = m * 10 + (ch - '0');
            if (dot) sc++;
        } else if (ch == '.' && !dot) {
            dot = 1;
        } else {
            return -1;
        }
    }
    if (c->p >= c->e || !any) return -1;
    c->p++;
    if (sc > 22) return -1;
    *mant = m;
    *scale = sc;
    return 0;
}

/* Fast path for the usual "ddd.dddddddd" with at most 18 digits in all; anything else goes to
 * parse_decstr_slow (same result). */
static inline int parse_decstr(Cur *c, int64_t *mant, int *scale) {
    const char *p = c->p, *e = c->e;
    if (p >= e || *p != '"') return -1;
    p++;
    const char *s0 = p;
    uint64_t m = 0;
    while (p < e && (unsigned)(*p - '0') < 10u) { m = m * 10 + (uint64_t)(*p - '0'); p++; }
    int nint = (int)(p - s0), sc = 0;
    if (p < e && *p == '.') {
        p++;
        const char *f0 = p;
        while (p < e && (unsigned)(*p - '0') < 10u) { m = m * 10 + (uint64_t)(*p - '0'); p++; }
        sc = (int)(p - f0);
    }
    if (p >= e || *p != '"' || nint + sc == 0 || nint + sc > 18) return parse_decstr_slow(c, mant, scale);
    c->p = p + 1;
    *mant = (int64_t)m;
    *scale = sc;
    return 0;
}

static int scratch_push(Book *b, int side, int64_t tick, double q) {
    if (b->sc_n == b->sc_cap) {
        int64_t nc = b->sc_cap * 2;
        int64_t *t = realloc(b->sc_tick, sizeof(int64_t) * nc);
        if (!t) return -1;
        b->sc_tick = t;
        double *qq = realloc(b->sc_q, sizeof(double) * nc);
        if (!qq) return -1;
        b->sc_q = qq;
        int *ss = realloc(b->sc_side, sizeof(int) * nc);
        if (!ss) return -1;
        b->sc_side = ss;
        b->sc_cap = nc;
    }
    b->sc_tick[b->sc_n] = tick;
    b->sc_q[b->sc_n] = q;
    b->sc_side[b->sc_n] = side;
    b->sc_n++;
    return 0;
}

/* [["price","qty"],...] into the scratch list. Returns 0, -1 malformed, -2 rejected level. */
static int parse_levels(Book *b, Cur *c, int side) {
    ws(c);
    if (c->p >= c->e || *c->p != '[') return -1;
    c->p++;
    ws(c);
    if (c->p < c->e && *c->p == ']') { c->p++; return 0; }
    int bad = 0;
    while (1) {
        ws(c);
        if (c->p >= c->e || *c->p != '[') return -1;
        c->p++;
        ws(c);
        int64_t pm, qm;
        int ps, qs;
        const char *at = c->p;
        int perr = parse_decstr(c, &pm, &ps);
        if (perr) { c->p = at; if (skip_value(c, 1)) return -1; }
        ws(c);
        if (c->p >= c->e || *c->p != ',') return -1;
        c->p++;
        ws(c);
        at = c->p;
        int qerr = parse_decstr(c, &qm, &qs);
        if (qerr) { c->p = at; if (skip_value(c, 1)) return -1; }
        ws(c);
        if (c->p >= c->e || *c->p != ']') return -1;
        c->p++;
        if (perr || qerr || pm == 0) {
            bad = 1;
        } else {
            if (ps > b->dec) {
                int64_t div = (int64_t)P10[ps - b->dec];
                if (pm % div) { bad = 1; } else { pm /= div; ps = b->dec; }
            }
            if (bad) {
                /* price not on the tick grid */
            } else {
                int64_t tick = pm;
                for (int k = ps; k < b->dec; k++) {
                    if (tick > INT64_MAX / 20) { bad = 1; break; }
                    tick *= 10;
                }
                double q = (double)qm / P10[qs];
                if (qm >= (1LL << 53)) bad = 1;
                if (!bad && scratch_push(b, side, tick, q)) return -1;
            }
        }
        ws(c);
        if (c->p >= c->e) return -1;
        if (*c->p == ',') { c->p++; continue; }
        if (*c->p == ']') { c->p++; return bad ? -2 : 0; }
        return -1;
    }
}

/* Parse one depthUpdate (bare or combined-stream wrapped) or REST snapshot into the scratch.
 * Returns 0, ST_MALFORMED, ST_REJECTED or ST_IGNORED. */
static int parse_obj(Book *b, Cur *c, int depth) {
    ws(c);
    if (c->p >= c->e || *c->p != '{' || depth > 2) return ST_MALFORMED;
    c->p++;
    int rejected = 0;
    ws(c);
    if (c->p < c->e && *c->p == '}') { c->p++; return 0; }
    while (1) {
        ws(c);
        if (c->p >= c->e || *c->p != '"') return ST_MALFORMED;
        const char *k = c->p + 1;
        if (skip_string(c)) return ST_MALFORMED;
        size_t kl = (size_t)(c->p - k - 1);
        ws(c);
        if (c->p >= c->e || *c->p != ':') return ST_MALFORMED;
        c->p++;
        ws(c);
        int r = 0;
        if (kl == 1 && *k == 'E') r = parse_int(c, &b->msg_E);
        else if (kl == 1 && *k == 'U') r = parse_int(c, &b->msg_U);
        else if (kl == 1 && *k == 'u') r = parse_int(c, &b->msg_u);
        else if (kl == 2 && k[0] == 'p' && k[1] == 'u') { r = parse_int(c, &b->msg_pu); b->msg_has_pu = 1; }
        else if (kl == 12 && !memcmp(k, "lastUpdateId", 12)) { r = parse_int(c, &b->msg_last); b->msg_kind = 2; }
        else if ((kl == 1 && *k == 'b') || (kl == 4 && !memcmp(k, "bids", 4))) {
            r = parse_levels(b, c, BID);
            if (r == -2) { rejected = 1; r = 0; }
        } else if ((kl == 1 && *k == 'a') || (kl == 4 && !memcmp(k, "asks", 4))) {
            r = parse_levels(b, c, ASK);
            if (r == -2) { rejected = 1; r = 0; }
        } else if (kl == 1 && *k == 'e') {
            const char *v = c->p;
            r = skip_string(c);
            if (!r && (c->p - v != 13 || memcmp(v, "\"depthUpdate\"", 13))) b->msg_kind = -1;
            else if (!r && b->msg_kind == 0) b->msg_kind = 1;
        } else if (kl == 4 && !memcmp(k, "data", 4)) {
            int st = parse_obj(b, c, depth + 1);
            if (st == ST_REJECTED) rejected = 1;
            else if (st) return st;
        } else {
            r = skip_value(c, 1);
        }
        if (r) return ST_MALFORMED;
        ws(c);
        if (c->p >= c->e) return ST_MALFORMED;
        if (*c->p == ',') { c->p++; continue; }
        if (*c->p == '}') { c->p++; break; }
        return ST_MALFORMED;
    }
    return rejected ? ST_REJECTED : 0;
}

static int parse_message(Book *b, const char *buf, int64_t len) {
    Cur c = {buf, buf + len};
    b->sc_n = 0;
    b->msg_kind = 0; b->msg_has_pu = 0;
    b->msg_E = b->msg_U = b->msg_u = b->msg_pu = b->msg_last = -1;
    int st = parse_obj(b, &c, 0);
    if (st) return st;
    if (b->msg_kind == 2) return ST_SNAPSHOT;
    if (b->msg_kind != 1) return ST_IGNORED;
    if (b->msg_E < 0 || b->msg_U < 0 || b->msg_u < 0) return ST_MALFORMED;
    return 0;
}

/* ---------------------------------------------------------------- sync rule + apply */

static int apply_parsed_delta(Book *b) {
    if (!b->synced) return ST_UNSYNCED;
    int64_t last = b->last_id, u = b->msg_u, U = b->msg_U;
    if (u < last || (u == last && (b->rule == 0 || !b->expect_first))) {
        b->stats[S_DROPPED]++;
        return ST_DROPPED;
    }
    int ok;
    if (b->rule == 0) ok = b->expect_first ? (U <= last + 1) : (U == last + 1);
    else ok = (b->msg_has_pu && b->msg_pu == last) || (b->expect_first && U <= last && last <= u);
    if (!ok) {
        b->stats[S_GAPS]++;
        b->synced = 0;
        return ST_GAP;
    }
    for (int64_t k = 0; k < b->sc_n; k++) set_level(b, b->sc_side[k], b->sc_tick[k], b->sc_q[k]);
    b->stats[S_LEVELS] += b->sc_n;
    b->stats[S_APPLIED]++;
    b->last_id = u;
    b->expect_first = 0;
    if (cg_is_crossed(b)) {
        b->stats[S_GAPS]++;
        b->stats[S_CROSSED]++;
        b->synced = 0;
        return ST_CROSSED;
    }
    return ST_APPLIED;
}

/* Parse + sequence-check + apply one raw message. A snapshot message loads the book (then
 * the caller's sync state restarts from its lastUpdateId). Malformed / rejected messages change
 * nothing and are counted; the next delta then breaks the chain and triggers a resync. */
int cg_feed(Book *b, const char *buf, int64_t len) {
    int st = parse_message(b, buf, len);
    if (st == ST_SNAPSHOT) {
        int64_t bt = INT64_MIN, at = INT64_MAX;
        for (int64_t k = 0; k < b->sc_n; k++) {
            if (b->sc_q[k] == 0.0) continue;
            if (b->sc_side[k] == BID && b->sc_tick[k] > bt) bt = b->sc_tick[k];
            if (b->sc_side[k] == ASK && b->sc_tick[k] < at) at = b->sc_tick[k];
        }
        int64_t center = bt != INT64_MIN && at != INT64_MAX ? (bt + at) / 2 : (bt != INT64_MIN ? bt : (at != INT64_MAX ? at : 0));
        cg_begin_snapshot(b, center);
        for (int64_t k = 0; k < b->sc_n; k++) {
            if (b->sc_q[k] == 0.0) { b->stats[S_ZERO_SKIPPED]++; continue; }
            set_level(b, b->sc_side[k], b->sc_tick[k], b->sc_q[k]);
        }
        cg_set_synced(b, b->msg_last);
        return b->synced ? ST_SNAPSHOT : ST_CROSSED;
    }
    if (st == ST_MALFORMED) { b->stats[S_MALFORMED]++; return st; }
    if (st == ST_REJECTED) { b->stats[S_REJECTED]++; return st; }
    if (st == ST_IGNORED) { b->stats[S_IGNORED]++; return st; }
    return apply_parsed_delta(b);
}

/* Run a batch of raw messages (buf + offsets: message i is buf[off[i]:off[i+1]]).
 *
 * mode 0 (session clock): the exchange second [t, t+1000) is closed, and its frame taken, when the
 *   first message with E >= t + 1000 arrives, before it is applied; every second is emitted.
 * mode 1 (peer clock, shared/bench/peer_orderbook.py): a frame is taken after applying a delta whose
 *   E second differs from the previous applied delta's.
 * do_frames 0: apply only.
 * Per frame k: out_ts[k] (ms), out_meta[k*(5+nw) ...] = mid, best_bid, best_ask, first_bucket_price,
 *   imbalance_5, MAs...; out_bid/out_ask/out_imb[k*(2N+1) ...]; out_bma[k*nw*(2N+1) ...].
 * Stops before a message that needs a resync (gap / unsynced) or when max_frames would be exceeded:
 *   returns the index of the next message to process; *n_frames, *cur_sec carry state between calls.
 */
int64_t cg_run(Book *b, const char *buf, const int64_t *off, int64_t n, int mode, int do_frames,
               int64_t *cur_sec, int64_t max_frames, int64_t *n_frames, int64_t *out_ts, double *out_meta,
               double *out_bid, double *out_ask, double *out_imb, double *out_bma, int *last_status) {
    int nbk = 2 * b->nb + 1, nm = 5 + b->nw;
    double meta[4];
    for (int64_t i = 0; i < n; i++) {
        const char *m = buf + off[i];
        int64_t len = off[i + 1] - off[i];
        int st = parse_message(b, m, len);
        if (st == ST_MALFORMED) { b->stats[S_MALFORMED]++; *last_status = st; continue; }
        if (st == ST_REJECTED) { b->stats[S_REJECTED]++; *last_status = st; continue; }
        if (st == ST_IGNORED || st == ST_SNAPSHOT) { b->stats[S_IGNORED]++; continue; }
        int64_t sec = b->msg_E - b->msg_E % 1000;
        if (do_frames && mode == 0) {
            if (*cur_sec < 0) *cur_sec = sec;
            while (sec >= *cur_sec + 1000) {
                if (*n_frames >= max_frames) { *last_status = -1; return i; }
                int64_t k = *n_frames;
                int r = b->synced ? cg_frame_buckets(b, b->width, b->nb, out_bid + k * nbk, out_ask + k * nbk, meta) : 1;
                if (r == 0) {
                    double *mt = out_meta + k * nm;
                    mt[0] = meta[0]; mt[1] = meta[1]; mt[2] = meta[2]; mt[3] = meta[3];
                    cg_frame_mas(b, out_bid + k * nbk, out_ask + k * nbk, meta[3], out_imb + k * nbk, mt + 4, mt + 5,
                                 out_bma + k * b->nw * nbk);
                    out_ts[k] = *cur_sec;
                    (*n_frames)++;
                    b->stats[S_FRAMES]++;
                } else {
                    b->stats[S_FRAMES_SKIPPED]++;
                }
                *cur_sec += 1000;
            }
        }
        st = apply_parsed_delta(b);
        *last_status = st;
        if (st == ST_GAP || st == ST_UNSYNCED) return i;
        if (st == ST_CROSSED) return i + 1;
        if (do_frames && mode == 1 && st == ST_APPLIED) {
            if (*cur_sec >= 0 && sec != *cur_sec) {
                if (*n_frames >= max_frames) { *last_status = -1; *cur_sec = sec; return i + 1; }
                int64_t k = *n_frames;
                if (cg_frame_buckets(b, b->width, b->nb, out_bid + k * nbk, out_ask + k * nbk, meta) == 0) {
                    double *mt = out_meta + k * nm;
                    mt[0] = meta[0]; mt[1] = meta[1]; mt[2] = meta[2]; mt[3] = meta[3];
                    cg_frame_mas(b, out_bid + k * nbk, out_ask + k * nbk, meta[3], out_imb + k * nbk, mt + 4, mt + 5,
                                 out_bma + k * b->nw * nbk);
                    out_ts[k] = sec;
                    (*n_frames)++;
                    b->stats[S_FRAMES]++;
                } else {
                    b->stats[S_FRAMES_SKIPPED]++;
                }
            }
            *cur_sec = sec;
        }
    }
    *last_status = 0;
    return n;
}
