/*
 * White-box: the profiler's exponential draws (core/sample.c).  The bytes
 * to a thread's next sample point are -ln(u) * period with u uniform in
 * (0, 1); -ln(u) comes from a table of ln over [1, 2] and a chord between
 * its neighbours (hk_sample_neg_ln_unit), which must stay within 2e-6 of
 * the true value everywhere, fall as u grows, and give the exponential
 * distribution's moments and tail.  The reference here is a long double
 * series (no libm in the tests' link).
 */
#include "core/core_internal.h"
#include "harness.h"

#include <stdio.h>

#define LN2 0.693147180559945309417232121458L

/* ln(x) for x > 0, to about 1e-18: x = m * 2^e, m in [1, 2), and ln m by
 * the atanh series in s = (m - 1) / (m + 1) <= 1/3, 40 terms. */
static long double ref_ln(long double x) {
    int e = 0;
    while (x >= 2.0L) { x /= 2.0L; e++; }
    while (x < 1.0L) { x *= 2.0L; e--; }
    long double s = (x - 1.0L) / (x + 1.0L), s2 = s * s, term = s, sum = 0.0L;
    for (int k = 1; k < 80; k += 2) {
        sum += term / (long double)k;
        term *= s2;
    }
    return (long double)e * LN2 + 2.0L * sum;
}

static long double fabsl_(long double x) { return x < 0 ? -x : x; }

/* -ln(r / 2^64) for odd r, the exact value the draw approximates. */
static long double ref_neg_ln_unit(uint64_t r) {
    r |= 1;
    return 64.0L * LN2 - ref_ln((long double)r);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The table is filled when profiling is first switched on. */
static void table_ready(void) {
    hk_ensure_init();
    size_t period = hk_sample_period_get();
    hk_sample_configure(true, period);
    hk_sample_configure(false, period);
}

TEST(neg_ln_unit_is_within_2e_6_of_the_truth) {
    table_ready();
    long double worst = 0.0L;
    uint64_t worst_r = 0;
    /* Every leading-zero count, every table step, random bits below. */
    for (unsigned z = 0; z < 64; z++) {
        for (unsigned step = 0; step < 256; step++) {
            for (int k = 0; k < 4; k++) {
                uint64_t r = z == 63 ? 1 : ((UINT64_C(1) << 63) | ((uint64_t)step << 55) | (rng() >> 9)) >> z;
                long double err = (long double)hk_sample_neg_ln_unit(r) - ref_neg_ln_unit(r);
                if (err < 0) err = -err;
                if (err > worst) {
                    worst = err;
                    worst_r = r;
                }
            }
        }
    }
    EXPECT_TRUE(worst < 2e-6L, "the chord's error is at most 1.9e-6 (plus rounding)");
    if (worst >= 2e-6L) fprintf(stderr, "  worst %Lg at r=%#llx\n", worst, (unsigned long long)worst_r);
    /* Exact where the chord meets the table: u = 1/2, 1/4, 2^-64. */
    EXPECT_TRUE(fabsl_((long double)hk_sample_neg_ln_unit(UINT64_C(1) << 63) - LN2) < 1e-12L, "u = 1/2");
    EXPECT_TRUE(fabsl_((long double)hk_sample_neg_ln_unit(UINT64_C(1) << 62) - 2 * LN2) < 1e-12L, "u = 1/4");
    EXPECT_TRUE(fabsl_((long double)hk_sample_neg_ln_unit(0) - 64 * LN2) < 1e-12L, "r = 0 read as 1");
    EXPECT_TRUE(hk_sample_neg_ln_unit(UINT64_MAX) >= 0.0 && hk_sample_neg_ln_unit(UINT64_MAX) < 1e-6,
                "u just below 1: about 0, never negative");
}

TEST(neg_ln_unit_falls_as_u_grows) {
    table_ready();
    double last = hk_sample_neg_ln_unit(1);
    int rises = 0;
    /* r climbs through every octave in small steps, across table steps. */
    for (uint64_t r = 3; r < UINT64_MAX / 2; r += (r >> 12) + 2) {
        double v = hk_sample_neg_ln_unit(r);
        if (v > last) rises++;
        last = v;
    }
    EXPECT_EQ_I(rises, 0, "never rises");
}

/* 2^20 draws: mean 1 (sd 1: 4 sd of the mean is 0.004), P(X < ln 2) = 1/2
 * (4 sd 0.002), P(X > 3) = e^-3 = 0.0498 (4 sd 0.0009), P(X > 10) = 4.5e-5
 * (47 expected: 10 to 100 allowed). */
TEST(draws_are_exponential) {
    table_ready();
    const int n = 1 << 20;
    double sum = 0;
    int below_ln2 = 0, above3 = 0, above10 = 0;
    for (int i = 0; i < n; i++) {
        double x = hk_sample_neg_ln_unit(rng());
        sum += x;
        below_ln2 += x < 0.6931471805599453;
        above3 += x > 3.0;
        above10 += x > 10.0;
    }
    double mean = sum / n, p_half = (double)below_ln2 / n, p3 = (double)above3 / n;
    EXPECT_TRUE(mean > 0.996 && mean < 1.004, "mean 1");
    EXPECT_TRUE(p_half > 0.498 && p_half < 0.502, "median ln 2");
    EXPECT_TRUE(p3 > 0.0489 && p3 < 0.0507, "P(X > 3) = e^-3");
    EXPECT_TRUE(above10 >= 10 && above10 <= 100, "P(X > 10) = e^-10");
    if (!(mean > 0.996 && mean < 1.004) || !(p_half > 0.498 && p_half < 0.502))
        fprintf(stderr, "  mean %.5f P(<ln2) %.5f P(>3) %.5f n(>10) %d\n", mean, p_half, p3, above10);
}

TEST_MAIN()
