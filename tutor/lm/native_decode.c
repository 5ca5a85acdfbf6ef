/* One decode step of a Llama model for one sequence on CPU, in float32, over the int4 weights
 * PyTorch's CPU int4 kernel uses (tutor/lm/native.py builds this file with the machine's C
 * compiler at first use and falls back to the torch loop when it cannot).
 *
 * Why: decoding one token of the bundled 135M model runs ~600 small torch ops; their dispatch
 * cost about half of a token, and PyTorch's int4 matmul for a single row runs at ~8 GB/s with
 * bf16 activations. Here a step is one call: the same arithmetic as tutor/lm/fast.py's
 * LlamaDecoder.forward for one token (RMSNorm, fused q/k/v, RoPE, grouped-query attention over
 * the KV cache, SiLU MLP, residuals, final norm, output head), with float32 activations.
 *
 * Weights are read where torch keeps them (no copy):
 *   int4 projection: packed uint8 [N/64][K][32]; byte j of row k of block b holds the weight of
 *     output row 64b+j (low nibble) and 64b+32+j (high nibble) at input k;
 *     scales_and_zeros bf16 [K/G][N][2]: w = (q - 8) * scale + zero.
 *   LoRA (optional, unmerged): A int8 [r][K] with bf16 scale per row, B int8 [N][r] with bf16
 *     scale per row: delta = B (A x).
 * The KV cache is the torch loop's: float32 [layer][2][n_kv][cache_len][head_dim]. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

/* A float sum the compiler may vectorise (reassociate): -fopenmp-simd enables only these
 * pragmas, not the OpenMP runtime. */
#define PRAGMA(x) _Pragma(#x)
#define SIMD_SUM(v) PRAGMA(omp simd reduction(+ : v))

typedef struct {
    const uint8_t *packed;
    const uint16_t *sz;
    int n, k, g;
    const int8_t *a_q;
    const uint16_t *a_s;
    const int8_t *b_q;
    const uint16_t *b_s;
    int r; /* 0: no adapter */
    const float *dense; /* instead of packed/sz: float32 [N][K] (an output head left dense) */
} Proj;

typedef struct {
    const float *norm_in, *norm_post;
    Proj qkv, o, gate_up, down;
} Layer;

typedef struct {
    int n_layers, hidden, n_heads, n_kv, head_dim, inter, vocab, max_pos;
    float eps, final_eps, scaling;
    const float *embed; /* [vocab][hidden] */
    const float *cos, *sin; /* [max_pos][head_dim] */
    const Layer *layers;
    const float *norm;
    Proj head, head2; /* head2.n == 0: one projection; else the two are summed (int8 as hi + lo) */
} Model;

int tutor_native_abi(void) { return 4; }

int tutor_native_simd(void) {
#if defined(__AVX512F__)
    return 512;
#elif defined(__AVX2__) && defined(__FMA__)
    return 256;
#else
    return 0;
#endif
}

static inline float bf16(uint16_t v) {
    uint32_t u = (uint32_t)v << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void gemv_dense(const Proj *p, const float *x, float *y, int accumulate, int lo, int hi) {
    for (int i = lo; i < hi; i++) {
        const float *w = p->dense + (size_t)i * p->k;
        float s = 0.f;
        SIMD_SUM(s)
        for (int j = 0; j < p->k; j++) s += w[j] * x[j];
        y[i] = accumulate ? y[i] + s : s;
    }
}

/* Rows [64 b0, 64 b1) of y (+)= W x for an int4 projection; xsum[i]: the sum of group i of x. */
static void gemv_q4_blocks(const Proj *p, const float *x, const float *xsum, float *y,
                           int accumulate, int b0, int b1) {
    const int n = p->n, k = p->k, g = p->g, ng = k / g;
    for (int nb = b0; nb < b1; nb++) {
        const uint8_t *pb = p->packed + (size_t)nb * k * 32;
        float *yb = y + nb * 64;
#if defined(__AVX512F__)
        const __m512i m15 = _mm512_set1_epi32(15);
        const __m512i hi16 = _mm512_set1_epi32((int)0xffff0000u);
        const __m512 eight = _mm512_set1_ps(8.f);
        __m512 o[4];
        for (int q = 0; q < 4; q++)
            o[q] = accumulate ? _mm512_loadu_ps(yb + 16 * q) : _mm512_setzero_ps();
        for (int gi = 0; gi < ng; gi++) {
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            __m512 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            for (int kk = gi * g; kk < (gi + 1) * g; kk += 2) {
                const uint8_t *b = pb + (size_t)kk * 32;
                __m512 xv = _mm512_set1_ps(x[kk]), xw = _mm512_set1_ps(x[kk + 1]);
                __m512i v0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)b));
                __m512i v1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b + 16)));
                __m512i w0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b + 32)));
                __m512i w1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b + 48)));
                a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(v0, m15)), xv, a0);
                a1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(v1, m15)), xv, a1);
                a2 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(v0, 4)), xv, a2);
                a3 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(v1, 4)), xv, a3);
                b0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(w0, m15)), xw, b0);
                b1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(w1, m15)), xw, b1);
                b2 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(w0, 4)), xw, b2);
                b3 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(w1, 4)), xw, b3);
            }
            __m512 acc[4] = {_mm512_add_ps(a0, b0), _mm512_add_ps(a1, b1),
                             _mm512_add_ps(a2, b2), _mm512_add_ps(a3, b3)};
            const uint16_t *s = p->sz + ((size_t)gi * n + (size_t)nb * 64) * 2;
            __m512 xs = _mm512_set1_ps(xsum[gi]);
            for (int q = 0; q < 4; q++) {
                /* 16 (scale, zero) pairs of bf16 as 32-bit lanes: scale low, zero high */
                __m512i pr = _mm512_loadu_si512((const void *)(s + 32 * q));
                __m512 sc = _mm512_castsi512_ps(_mm512_slli_epi32(pr, 16));
                __m512 z = _mm512_castsi512_ps(_mm512_and_si512(pr, hi16));
                __m512 zz = _mm512_fnmadd_ps(eight, sc, z); /* q*sc + (z - 8 sc) */
                o[q] = _mm512_fmadd_ps(sc, acc[q], _mm512_fmadd_ps(zz, xs, o[q]));
            }
        }
        for (int q = 0; q < 4; q++) _mm512_storeu_ps(yb + 16 * q, o[q]);
#elif defined(__AVX2__) && defined(__FMA__)
        const __m256i m15 = _mm256_set1_epi32(15);
        const __m256i hi16 = _mm256_set1_epi32((int)0xffff0000u);
        const __m256 eight = _mm256_set1_ps(8.f);
        __m256 o[8];
        for (int q = 0; q < 8; q++)
            o[q] = accumulate ? _mm256_loadu_ps(yb + 8 * q) : _mm256_setzero_ps();
        for (int gi = 0; gi < ng; gi++) {
            __m256 a[8];
            for (int q = 0; q < 8; q++) a[q] = _mm256_setzero_ps();
            for (int kk = gi * g; kk < (gi + 1) * g; kk++) {
                const uint8_t *b = pb + (size_t)kk * 32;
                const __m256 xv = _mm256_set1_ps(x[kk]);
                for (int q = 0; q < 4; q++) { /* bytes 8q..8q+7: rows 8q.. (low), 32+8q.. (high) */
                    __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b + 8 * q)));
                    a[q] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(v, m15)), xv, a[q]);
                    a[q + 4] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(v, 4)), xv, a[q + 4]);
                }
            }
            const uint16_t *s = p->sz + ((size_t)gi * n + (size_t)nb * 64) * 2;
            const __m256 xs = _mm256_set1_ps(xsum[gi]);
            for (int q = 0; q < 8; q++) {
                __m256i pr = _mm256_loadu_si256((const __m256i *)(s + 16 * q));
                __m256 sc = _mm256_castsi256_ps(_mm256_slli_epi32(pr, 16));
                __m256 z = _mm256_castsi256_ps(_mm256_and_si256(pr, hi16));
                __m256 zz = _mm256_fnmadd_ps(eight, sc, z);
                o[q] = _mm256_fmadd_ps(sc, a[q], _mm256_fmadd_ps(zz, xs, o[q]));
            }
        }
        for (int q = 0; q < 8; q++) _mm256_storeu_ps(yb + 8 * q, o[q]);
#else
        float out[64];
        for (int j = 0; j < 64; j++) out[j] = accumulate ? yb[j] : 0.f;
        for (int gi = 0; gi < ng; gi++) {
            float a[64];
            for (int j = 0; j < 64; j++) a[j] = 0.f;
            for (int kk = gi * g; kk < (gi + 1) * g; kk++) {
                const float xv = x[kk];
                const uint8_t *b = pb + (size_t)kk * 32;
                for (int j = 0; j < 32; j++) {
                    a[j] += xv * (float)(b[j] & 15);
                    a[j + 32] += xv * (float)(b[j] >> 4);
                }
            }
            const uint16_t *s = p->sz + ((size_t)gi * n + (size_t)nb * 64) * 2;
            for (int j = 0; j < 64; j++) {
                const float sc = bf16(s[2 * j]), z = bf16(s[2 * j + 1]);
                out[j] += sc * a[j] + (z - 8.f * sc) * xsum[gi];
            }
        }
        for (int j = 0; j < 64; j++) yb[j] = out[j];
#endif
    }
}

/* -- threads: a job's parts (a projection's rows, attention's heads) split between the caller
 * and a small pool of workers ------------------------------------------------------------ */

#define MAX_THREADS 64
#define SPIN_LIMIT 20000 /* polls (~0.1 ms) before a worker sleeps on the condition variable */

typedef struct {
    void (*fn)(const void *ctx, int part, int parts);
    const void *ctx;
    int parts;
} Job;

typedef struct {
    const Proj *p;
    const float *x, *xsum;
    float *y;
    int accumulate;
} Gemv;

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cv = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t step_mu = PTHREAD_MUTEX_INITIALIZER; /* one threaded step at a time */
static atomic_int job_seq, job_done;
static Job job;
static int n_workers;
static int start_seq[MAX_THREADS]; /* the job count when each worker was created */

static inline void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void gemv_part(const void *ctx, int part, int parts) {
    const Gemv *j = ctx;
    const Proj *p = j->p;
    if (p->dense) {
        const int lo = (int)((long)p->n * part / parts), hi = (int)((long)p->n * (part + 1) / parts);
        gemv_dense(p, j->x, j->y, j->accumulate, lo, hi);
        return;
    }
    const int blocks = p->n / 64;
    const int b0 = (int)((long)blocks * part / parts), b1 = (int)((long)blocks * (part + 1) / parts);
    gemv_q4_blocks(p, j->x, j->xsum, j->y, j->accumulate, b0, b1);
}

static void *worker(void *arg) {
    const int id = (int)(intptr_t)arg;
    int seen = start_seq[id]; /* not a fresh read: a job published before it ran is still its */
    for (;;) {
        int spins = 0, s;
        while ((s = atomic_load_explicit(&job_seq, memory_order_acquire)) == seen) {
            if (++spins < SPIN_LIMIT) {
                relax();
                continue;
            }
            pthread_mutex_lock(&pool_mu);
            while (atomic_load(&job_seq) == seen) pthread_cond_wait(&pool_cv, &pool_mu);
            pthread_mutex_unlock(&pool_mu);
        }
        seen = s;
        if (id + 1 < job.parts) job.fn(job.ctx, id + 1, job.parts);
        atomic_fetch_add_explicit(&job_done, 1, memory_order_release);
    }
    return NULL;
}

static void forget_pool(void) { n_workers = 0; } /* a forked child has none of the threads */

static int ensure_workers(int want) {
    static int atfork_set;
    if (!atfork_set) {
        pthread_atfork(NULL, NULL, forget_pool);
        atfork_set = 1;
    }
    if (want > MAX_THREADS - 1) want = MAX_THREADS - 1;
    while (n_workers < want) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        start_seq[n_workers] = atomic_load(&job_seq);
        int rc = pthread_create(&t, &attr, worker, (void *)(intptr_t)n_workers);
        pthread_attr_destroy(&attr);
        if (rc != 0) break;
        n_workers++;
    }
    return n_workers;
}

/* threads sharing this step's matmuls: above 1 only in the caller holding step_mu */
static _Thread_local int step_threads = 1;

/* fn(ctx, part, parts) for every part: part 0 in the caller, the others in the workers. */
static void parallel(void (*fn)(const void *, int, int), const void *ctx, int parts) {
    if (parts <= 1) {
        fn(ctx, 0, 1);
        return;
    }
    job = (Job){fn, ctx, parts};
    atomic_store(&job_done, 0);
    pthread_mutex_lock(&pool_mu);
    atomic_fetch_add(&job_seq, 1);
    pthread_cond_broadcast(&pool_cv);
    pthread_mutex_unlock(&pool_mu);
    fn(ctx, 0, parts);
    while (atomic_load_explicit(&job_done, memory_order_acquire) < n_workers) relax();
}

/* y (+)= W x, the rows split between step_threads threads. */
static void gemv_q4(const Proj *p, const float *x, float *y, int accumulate) {
    const int g = p->g, ng = p->dense ? 0 : p->k / g;
    float xsum[ng > 0 ? ng : 1];
    for (int i = 0; i < ng; i++) {
        float s = 0.f;
        SIMD_SUM(s)
        for (int j = 0; j < g; j++) s += x[i * g + j];
        xsum[i] = s;
    }
    const Gemv ctx = {p, x, xsum, y, accumulate};
    const int small = !p->dense && p->n / 64 < 2 * step_threads;
    parallel(gemv_part, &ctx, small ? 1 : step_threads);
}

/* sum_j a[j] x[j] for int8 a; len is a multiple of 16 (checked by native.py). */
static inline float dot_i8(const int8_t *a, const float *x, int len) {
#if defined(__AVX512F__)
    __m512 acc = _mm512_setzero_ps();
    for (int j = 0; j < len; j += 16) {
        __m512i v = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(a + j)));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), _mm512_loadu_ps(x + j), acc);
    }
    return _mm512_reduce_add_ps(acc);
#elif defined(__AVX2__) && defined(__FMA__)
    __m256 acc = _mm256_setzero_ps();
    for (int j = 0; j < len; j += 8) {
        __m256i v = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(a + j)));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), _mm256_loadu_ps(x + j), acc);
    }
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
#else
    float s = 0.f;
    SIMD_SUM(s)
    for (int j = 0; j < len; j++) s += (float)a[j] * x[j];
    return s;
#endif
}

/* y += B (A x), both int8 with a scale per row. */
static void lora_add(const Proj *p, const float *x, float *y) {
    const int r = p->r, k = p->k, n = p->n;
    float t[r];
    for (int i = 0; i < r; i++) t[i] = dot_i8(p->a_q + (size_t)i * k, x, k) * bf16(p->a_s[i]);
    for (int i = 0; i < n; i++) y[i] += dot_i8(p->b_q + (size_t)i * r, t, r) * bf16(p->b_s[i]);
}

static void project(const Proj *p, const float *x, float *y, int lora_on) {
    gemv_q4(p, x, y, 0);
    if (lora_on && p->r > 0) lora_add(p, x, y);
}

static void rms_norm(const float *h, const float *w, float eps, int n, float *out) {
    float ss = 0.f;
    SIMD_SUM(ss)
    for (int i = 0; i < n; i++) ss += h[i] * h[i];
    const float inv = 1.f / sqrtf(ss / (float)n + eps);
    for (int i = 0; i < n; i++) out[i] = h[i] * inv * w[i];
}

static void rope(float *v, const float *cos, const float *sin, int hd) {
    const int half = hd / 2;
    for (int i = 0; i < half; i++) {
        const float a = v[i], b = v[i + half];
        v[i] = a * cos[i] - b * sin[i];
        v[i + half] = b * cos[i + half] + a * sin[i + half];
    }
}

/* Feed `token` at position `pos` (the cache holds positions 0..pos-1); write the logits.
 * Returns 0, or a negative code when the arguments cannot be served. */
typedef struct {
    const float *qkv, *kc, *vc;
    float *att;
    int cache_len, pos, nh, hd, group;
    float scaling;
} Attend;

/* Heads [nh part / parts, nh (part + 1) / parts) of attention over positions 0..pos. */
static void attend_part(const void *ctx, int part, int parts) {
    const Attend *a = ctx;
    const int hd = a->hd, pos = a->pos;
    float scores[pos + 1];
    for (int hh = a->nh * part / parts; hh < a->nh * (part + 1) / parts; hh++) {
        const float *q = a->qkv + hh * hd;
        const float *kb = a->kc + (size_t)(hh / a->group) * a->cache_len * hd;
        const float *vb = a->vc + (size_t)(hh / a->group) * a->cache_len * hd;
        float mx = -INFINITY;
        for (int t = 0; t <= pos; t++) {
            const float *kt = kb + (size_t)t * hd;
            float s = 0.f;
            SIMD_SUM(s)
            for (int i = 0; i < hd; i++) s += q[i] * kt[i];
            s *= a->scaling;
            scores[t] = s;
            if (s > mx) mx = s;
        }
        float sum = 0.f;
        for (int t = 0; t <= pos; t++) {
            scores[t] = expf(scores[t] - mx);
            sum += scores[t];
        }
        float *o = a->att + hh * hd;
        for (int i = 0; i < hd; i++) o[i] = 0.f;
        for (int t = 0; t <= pos; t++) {
            const float w = scores[t] / sum;
            const float *vt = vb + (size_t)t * hd;
            for (int i = 0; i < hd; i++) o[i] += w * vt[i];
        }
    }
}

static int step(const Model *m, int token, int pos, float *kv, int cache_len, int lora_on,
                float *logits);

/* `threads`: how many threads share each matmul (the caller's and threads - 1 workers). */
int tutor_native_step(const Model *m, int token, int pos, float *kv, int cache_len, int lora_on,
                      float *logits, int threads) {
    if (token < 0 || token >= m->vocab || pos < 0 || pos >= cache_len || pos >= m->max_pos)
        return -1;
    if (threads <= 1) {
        return step(m, token, pos, kv, cache_len, lora_on, logits);
    }
    pthread_mutex_lock(&step_mu);
    const int have = ensure_workers(threads - 1) + 1;
    step_threads = have < threads ? have : threads;
    const int rc = step(m, token, pos, kv, cache_len, lora_on, logits);
    step_threads = 1;
    pthread_mutex_unlock(&step_mu);
    return rc;
}

static int step(const Model *m, int token, int pos, float *kv, int cache_len, int lora_on,
                float *logits) {
    const int d = m->hidden, hd = m->head_dim, nh = m->n_heads, nkv = m->n_kv;
    const int qkv_n = (nh + 2 * nkv) * hd, group = nh / nkv;
    float h[d], x[d], qkv[qkv_n], att[nh * hd], tmp[d];
    float gu[2 * m->inter], act[m->inter];
    memcpy(h, m->embed + (size_t)token * d, sizeof(float) * d);
    const float *cs = m->cos + (size_t)pos * hd, *sn = m->sin + (size_t)pos * hd;
    for (int li = 0; li < m->n_layers; li++) {
        const Layer *L = &m->layers[li];
        rms_norm(h, L->norm_in, m->eps, d, x);
        project(&L->qkv, x, qkv, lora_on);
        for (int i = 0; i < nh + nkv; i++) rope(qkv + i * hd, cs, sn, hd);
        float *kc = kv + (size_t)li * 2 * nkv * cache_len * hd, *vc = kc + (size_t)nkv * cache_len * hd;
        for (int j = 0; j < nkv; j++) {
            memcpy(kc + ((size_t)j * cache_len + pos) * hd, qkv + (nh + j) * hd, sizeof(float) * hd);
            memcpy(vc + ((size_t)j * cache_len + pos) * hd, qkv + (nh + nkv + j) * hd,
                   sizeof(float) * hd);
        }
        const Attend ctx = {qkv, kc, vc, att, cache_len, pos, nh, hd, group, m->scaling};
        parallel(attend_part, &ctx, step_threads > nh ? nh : step_threads);
        project(&L->o, att, tmp, lora_on);
        for (int i = 0; i < d; i++) h[i] += tmp[i];
        rms_norm(h, L->norm_post, m->eps, d, x);
        project(&L->gate_up, x, gu, lora_on);
        for (int i = 0; i < m->inter; i++) {
            const float gt = gu[i];
            act[i] = gt / (1.f + expf(-gt)) * gu[m->inter + i];
        }
        project(&L->down, act, tmp, lora_on);
        for (int i = 0; i < d; i++) h[i] += tmp[i];
    }
    rms_norm(h, m->norm, m->final_eps, d, x);
    gemv_q4(&m->head, x, logits, 0);
    if (m->head2.n) gemv_q4(&m->head2, x, logits, 1);
    return 0;
}
