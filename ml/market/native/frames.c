/* cobgrid: COB frame buckets (exact Python float semantics) and imbalance moving averages. */
#include "cobgrid.h"

/* ---------------------------------------------------------------- frames and moving averages */

/* CPython's float floor division (Objects/floatobject.c, _float_div_mod). */
static double py_floordiv(double vx, double wx) {
    double mod = fmod(vx, wx);
    double div = (vx - mod) / wx;
    if (mod) {
        if ((wx < 0) != (mod < 0)) div -= 1.0;
    }
    double floordiv;
    if (div) {
        floordiv = floor(div);
        if (div - floordiv > 0.5) floordiv += 1.0;
    } else {
        floordiv = copysign(0.0, vx / wx);
    }
    return floordiv;
}

/* py_floordiv without fmod when the quotient is clearly away from an integer (|x| <= 2^20, so
 * the rounded quotient is within 1e-9 of the exact one and both floor to the same integer). */
static inline double bucket_of(double x, double w) {
    double d = x / w, f = floor(d);
    if (d - f > 1e-9 && f + 1.0 - d > 1e-9 && d < 1048576.0 && d > -1048576.0) return f;
    return py_floordiv(x, w);
}

/* Buckets of the current book. meta: [mid, best_bid, best_ask, first_bucket_price].
 * Returns 0, or 1 if a side is empty, 2 if crossed, 3 if the frame is wider than the window
 * (or memory ran out re-centring), 4 on a bad width / nb. */
int cg_frame_buckets(Book *b, double width, int nb, double *bid_usd, double *ask_usd, double *meta) {
    int nbk = 2 * nb + 1;
    if (!(width > 0) || nb < 0 || nb > 1024) return 4;
    if (b->best[BID] == INT64_MIN || b->best[ASK] == INT64_MAX) return 1;
    if (b->best[BID] >= b->best[ASK]) return 2;
    double bb = (double)b->best[BID] / b->pow10, ba = (double)b->best[ASK] / b->pow10;
    double mid = (bb + ba) / 2, w = width;
    double center = floor(mid / w) * w;
    double lo = center - (double)nb * w;
    double hi = center + (double)(nb + 1) * w;
    int64_t lo_t = (int64_t)floor(lo * b->pow10) - 2, hi_t = (int64_t)ceil(hi * b->pow10) + 2;
    if (hi_t - lo_t >= b->cap) return 3;
    if (lo_t < b->base || hi_t >= b->base + b->cap) {
        int64_t mid_t = (b->best[BID] + b->best[ASK]) / 2;
        if (recenter(b, mid_t - b->cap / 2) != 0) return 3;
    }
    memset(bid_usd, 0, sizeof(double) * nbk);
    memset(ask_usd, 0, sizeof(double) * nbk);
    /* T[i] = first tick whose price falls in bucket >= i (bucket_of is monotone in the tick), so a
     * level's bucket is found by comparing integers; the USD of each bucket is summed best-first in
     * a register, the same sequence of float additions as the peer's code. */
    int64_t T[2 * 1024 + 3];
    for (int i = 0; i <= nbk; i++) {
        int64_t t = (int64_t)ceil((lo + (double)i * w) * b->pow10);
        while (bucket_of((double)(t - 1) / b->pow10 - lo, w) >= i) t--;
        while (bucket_of((double)t / b->pow10 - lo, w) < i) t++;
        T[i] = t;
    }
    int64_t hi_tick = (int64_t)ceil(hi * b->pow10);  /* first tick with price >= hi */
    while ((double)(hi_tick - 1) / b->pow10 >= hi) hi_tick--;
    while ((double)hi_tick / b->pow10 < hi) hi_tick++;
    if (hi_tick > T[nbk]) hi_tick = T[nbk];  /* never past bucket 2N */
    const double *q = b->q[BID];
    int cur = nbk - 1;
    double acc = 0.0;
    int touched = 0;
    for (int64_t g = b->best[BID] - b->base; g >= 0; g = bits_prev(b->bits[BID], g - 1)) {
        int64_t t = b->base + g;
        if (t < T[0]) break;
        if (t >= T[nbk]) continue;  /* above bucket 2N: cannot happen below the mid */
        if (t < T[cur]) {
            if (touched) bid_usd[cur] = acc;
            while (t < T[cur]) cur--;
            acc = 0.0;
        }
        double p = (double)t / b->pow10;
        acc += p * q[g];
        touched = 1;
    }
    if (touched) bid_usd[cur] = acc;
    q = b->q[ASK];
    cur = 0;
    acc = 0.0;
    touched = 0;
    for (int64_t g = b->best[ASK] - b->base; g >= 0;) {
        int64_t t = b->base + g;
        if (t >= hi_tick) break;
        if (t >= T[0]) {
            if (t >= T[cur + 1]) {
                if (touched) ask_usd[cur] = acc;
                while (t >= T[cur + 1]) cur++;
                acc = 0.0;
            }
            double p = (double)t / b->pow10;
            acc += p * q[g];
            touched = 1;
        }
        if (g + 1 >= b->cap) break;
        g = bits_next(b->bits[ASK], b->nwords, g + 1);
    }
    if (touched) ask_usd[cur] = acc;
    meta[0] = mid; meta[1] = bb; meta[2] = ba; meta[3] = lo;
    return 0;
}

/* Per-bucket imbalance, imbalance over buckets N-5..N+5, push into the MA history and compute
 * the MAs. imb: (2N+1,); out_ma: (nw,) means of imbalance_5; out_bma: (nw, 2N+1) per-bucket
 * means matched by absolute price bucket key = floor(mid / width) - N + i (see cob_fast.py). */
void cg_frame_mas(Book *b, const double *bid_usd, const double *ask_usd, double first_bucket_price,
                  double *imb, double *out_imb5, double *out_ma, double *out_bma) {
    int nbk = 2 * b->nb + 1;
    for (int i = 0; i < nbk; i++) {
        double t = bid_usd[i] + ask_usd[i];
        imb[i] = t > 0 ? (bid_usd[i] - ask_usd[i]) / t : 0.0;
    }
    int start = b->nb - 5 < 0 ? 0 : b->nb - 5, stop = b->nb + 6 > nbk ? nbk : b->nb + 6;
    double sb = 0, sa = 0;
    for (int i = start; i < stop; i++) { sb += bid_usd[i]; sa += ask_usd[i]; }
    double imb5 = sb + sa > 0 ? (sb - sa) / (sb + sa) : 0.0;
    *out_imb5 = imb5;
    int64_t key = (int64_t)llround(first_bucket_price / b->width);
    int h = b->ma_head;
    b->ma_keys[h] = key;
    b->ma_imb5[h] = imb5;
    memcpy(b->ma_imb + (size_t)h * nbk, imb, sizeof(double) * nbk);
    b->ma_head = (h + 1) % b->ma_len;
    if (b->ma_count < b->ma_len) b->ma_count++;
    double acc[2 * 1024 + 1];
    int cnt[2 * 1024 + 1];
    int nmax = 0;
    for (int wi = 0; wi < b->nw; wi++) {
        int n = b->windows[wi] < b->ma_count ? b->windows[wi] : b->ma_count;
        if (n > nmax) nmax = n;
        double s = 0;
        for (int j = n - 1; j >= 0; j--) {  /* oldest first, like sum(list) in ImbalanceMA */
            int r = (h - j + b->ma_len) % b->ma_len;
            s += b->ma_imb5[r];
        }
        out_ma[wi] = s / n;
    }
    /* Per-bucket MAs: one pass newest -> oldest, summing each price bucket's past values where
     * that bucket was inside the past frame's grid; window n reads the running sums after n rows. */
    for (int i = 0; i < nbk; i++) { acc[i] = 0; cnt[i] = 0; }
    for (int j = 0; j < nmax; j++) {
        int r = (h - j + b->ma_len) % b->ma_len;
        int64_t shift = key - b->ma_keys[r];
        const double *row = b->ma_imb + (size_t)r * nbk;
        int lo_i = shift < 0 ? (int)-shift : 0, hi_i = shift > 0 ? nbk - (int)(shift < nbk ? shift : nbk) : nbk;
        for (int i = lo_i; i < hi_i; i++) { acc[i] += row[i + shift]; cnt[i]++; }
        for (int wi = 0; wi < b->nw; wi++) {
            int n = b->windows[wi] < b->ma_count ? b->windows[wi] : b->ma_count;
            if (n != j + 1) continue;
            double *o = out_bma + (size_t)wi * nbk;
            for (int i = 0; i < nbk; i++) o[i] = acc[i] / cnt[i];
        }
    }
}

void cg_reset_mas(Book *b) { b->ma_count = 0; b->ma_head = 0; }
